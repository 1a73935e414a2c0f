package dev.dreamcluster.worker.model;

import ai.djl.ndarray.NDArray;
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
    private final Map<OpShape.Conv, ConvForm> convForms = new ConcurrentHashMap<>();
    private Set<OpShape> trace;

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

    public NDArray attention(NDArray q, NDArray k, NDArray v, int heads, NDArray mask) {
        record(new OpShape.Attention(q.getShape(), k.getShape(), heads, mask != null));
        return Nn.attention(q, k, v, heads, mask);
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
