package dev.dreamcluster.worker.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.jni.JniUtils;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The operations the models are written in, as one object per model set: {@link Nn}'s functions,
 * plus the measured choice of {@link ConvForm} per convolution shape and an optional trace of every
 * shape a forward pass meets. One compute thread uses it (the trace is not synchronised); the choice
 * table is filled by the startup check before the first training step and only read afterwards.
 *
 * <p>A convolution run with autograd recording must have a measured form: an unmeasured shape there
 * is a programming error (the trainer traces every bucket before training). Forward-only shapes that
 * were never measured (sampling, validation and VAE encoding at other sizes) use {@link
 * ConvForm#DIRECT}: the defect this guards against is in backward, and forward values are checked
 * against diffusers by the suite.
 */
public final class Ops {
    /**
     * How the models trade compute for memory.
     *
     * @param gradientCheckpointing train.json's {@code gradient_checkpointing}: each UNet resnet and
     *     transformer block and each CLIP layer keeps only its input through the forward and is
     *     recomputed in backward ({@link #recompute()}, {@link Recompute})
     * @param attentionChunkScores attention is computed in query chunks whose scores [B*heads, rows,
     *     Lk] hold at most this many elements ({@link Nn#attention}); 0 computes it whole
     * @param recomputeAttentionChunks with checkpointing, a transformer block's backward stores its
     *     attention's chunk outputs and recomputes one chunk's scores at a time, so the scores of one
     *     chunk exist at a time in backward too (one more forward of the attention scores per block)
     */
    public record Memory(boolean gradientCheckpointing, long attentionChunkScores, boolean recomputeAttentionChunks) {
        /**
         * 2^26 scores per chunk (128 MiB in fp16, 256 MiB in fp32): SD1.5's 64x64-latent self-attention
         * at batch 4 (32 heads x 4096 x 4096 = 2^29 scores) in 8 chunks of 512 queries; no model at
         * the tiny and medium test sizes is chunked.
         */
        public static final long DEFAULT_ATTENTION_CHUNK_SCORES = 1L << 26;

        public Memory {
            if (attentionChunkScores < 0) {
                throw new IllegalArgumentException("attentionChunkScores must be >= 0, got " + attentionChunkScores);
            }
        }

        /** Checkpointing as given, attention chunked at the default size, chunks recomputed one at a time. */
        public static Memory of(boolean gradientCheckpointing) {
            return new Memory(gradientCheckpointing, DEFAULT_ATTENTION_CHUNK_SCORES, true);
        }
    }

    private final Map<OpShape.Conv, ConvForm> convForms = new ConcurrentHashMap<>();
    private final Memory memory;
    private Set<OpShape> trace;

    /** Checkpointing off, attention chunked at the default size. */
    public Ops() {
        this(Memory.of(false));
    }

    /** train.json's {@code gradient_checkpointing}, attention chunked at the default size. */
    public Ops(boolean gradientCheckpointing) {
        this(Memory.of(gradientCheckpointing));
    }

    public Ops(Memory memory) {
        this.memory = memory;
    }

    public Memory memory() {
        return memory;
    }

    /**
     * The session one training micro-step runs its forward passes and its backward through: with
     * gradient checkpointing a recording {@link Recompute}, else {@link Recompute#DIRECT} (plain
     * autograd). Pass it to {@link ClipTextModel#forward(NDArray, int, Recompute)} and {@link
     * UNetModel#forward(NDArray, int[], NDArray, Recompute)} inside the step's GradientCollector,
     * then call its {@link Recompute#backward} instead of {@code gc.backward(loss)}.
     */
    public Recompute recompute() {
        return memory.gradientCheckpointing() ? Recompute.recording(memory.recomputeAttentionChunks()) : Recompute.DIRECT;
    }

    /** Starts recording every op's shapes (replacing an earlier trace). */
    public void startTrace() {
        trace = new LinkedHashSet<>();
    }

    /** The shapes recorded since {@link #startTrace}, in first-seen order; recording stops. */
    public Set<OpShape> stopTrace() {
        Set<OpShape> t = trace == null ? Set.of() : trace;
        trace = null;
        return t;
    }

    /** Records the measured form for a convolution shape. */
    public void choose(OpShape.Conv shape, ConvForm form) {
        convForms.put(shape, form);
    }

    public Map<OpShape.Conv, ConvForm> convForms() {
        return Map.copyOf(convForms);
    }

    private void record(OpShape s) {
        if (trace != null) {
            trace.add(s);
        }
    }

    public NDArray conv(NDArray x, NDArray w, NDArray b, int stride, int pad) {
        OpShape.Conv s = new OpShape.Conv(x.getShape(), w.getShape(), b != null, stride, pad);
        record(s);
        ConvForm form = convForms.get(s);
        if (form == null) {
            if (trace == null && JniUtils.isGradMode()) {
                throw new IllegalStateException("no measured convolution form for " + s.key()
                        + " (every training shape is checked before the first step)");
            }
            form = ConvForm.DIRECT;
        }
        return form.apply(x, w, b, stride, pad);
    }

    public NDArray linear(NDArray x, NDArray w, NDArray b) {
        record(new OpShape.Linear(x.getShape(), w.getShape(), b != null));
        return Nn.linear(x, w, b);
    }

    public NDArray groupNorm(NDArray x, int groups, NDArray gamma, NDArray beta, float eps) {
        record(new OpShape.GroupNorm(x.getShape(), groups, eps));
        return Nn.groupNorm(x, groups, gamma, beta, eps);
    }

    public NDArray layerNorm(NDArray x, NDArray gamma, NDArray beta, float eps) {
        record(new OpShape.LayerNorm(x.getShape(), eps));
        return Nn.layerNorm(x, gamma, beta, eps);
    }

    /** Multi-head attention ({@link Nn#attention}), in query chunks of at most {@link Memory#attentionChunkScores} scores. */
    public NDArray attention(NDArray q, NDArray k, NDArray v, int heads, NDArray mask) {
        return attention(Recompute.DIRECT, q, k, v, heads, mask);
    }

    /**
     * {@link #attention(NDArray, NDArray, NDArray, int, NDArray)} inside a segment: when {@code r}
     * records (a checkpointed block recomputed in backward) and the attention has several chunks,
     * each chunk is a recomputed sub-segment of {@code r} (only the chunk outputs [B*heads, rows, d]
     * are stored; backward recomputes one chunk's scores at a time), the head split and merge are
     * kept sub-segments. Otherwise the chunked direct form. The same values either way.
     */
    public NDArray attention(Recompute r, NDArray q, NDArray k, NDArray v, int heads, NDArray mask) {
        record(new OpShape.Attention(q.getShape(), k.getShape(), heads, mask != null));
        Shape qs = q.getShape();
        long b = qs.get(0);
        long lq = qs.get(1);
        long rows = Nn.chunkRows(b, heads, lq, k.getShape().get(1), memory.attentionChunkScores());
        if (rows >= lq || !r.recording()) {
            return Nn.attention(q, k, v, heads, mask, rows);
        }
        NDList h = r.keepAll((in, x) -> Nn.splitHeads(x.get(0), x.get(1), x.get(2), heads), q, k, v);
        NDArray[] parts = new NDArray[Math.toIntExact((lq + rows - 1) / rows)];
        for (int i = 0; i < parts.length; i++) {
            long lo = i * rows;
            long hi = Math.min(lq, lo + rows);
            parts[i] = r.run(false, (in, x) -> Nn.attentionRows(x.get(0), x.get(1), x.get(2), mask, lo, hi), h.get(0), h.get(1),
                    h.get(2));
        }
        return r.keep((in, x) -> Nn.mergeHeads(NDArrays.concat(x, 1), b, heads), parts);
    }

    public NDArray silu(NDArray x) {
        record(new OpShape.Activation("silu", x.getShape()));
        return Nn.silu(x);
    }

    public NDArray gelu(NDArray x) {
        record(new OpShape.Activation("gelu", x.getShape()));
        return Nn.gelu(x);
    }

    public NDArray quickGelu(NDArray x) {
        record(new OpShape.Activation("quick_gelu", x.getShape()));
        return Nn.quickGelu(x);
    }

    /** GEGLU: the first half of the last axis times gelu(second half). */
    public NDArray geglu(NDArray proj) {
        record(new OpShape.Activation("geglu", proj.getShape()));
        return Nn.geglu(proj);
    }

    /**
     * Additive causal mask [lq, lk] in {@code dtype}: 0 on and below the diagonal, the most negative
     * float32 above it (as transformers' CLIP builds it), so softmax gives those keys weight 0.
     */
    public static NDArray causalMask(ai.djl.ndarray.NDManager m, long lq, long lk, ai.djl.ndarray.types.DataType dtype) {
        float[] v = new float[Math.toIntExact(lq * lk)];
        for (int i = 0; i < lq; i++) {
            for (int j = i + 1; j < lk; j++) {
                v[(int) (i * lk + j)] = -Float.MAX_VALUE;
            }
        }
        NDArray mask = Tensors.of(m, v, new ai.djl.ndarray.types.Shape(lq, lk));
        return mask.getDataType() == dtype ? mask : mask.toType(dtype, false);
    }

    public NDArray upsample2x(NDArray x) {
        return Nn.upsample2x(x);
    }

    public NDArray padBottomRight(NDArray x) {
        return Nn.padBottomRight(x);
    }
}
