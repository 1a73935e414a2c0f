package dev.dreamcluster.worker.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDScope;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.GradientCollector;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * Gradient checkpointing built from what DJL 0.36's autograd has (no checkpoint function, no custom
 * autograd functions): a model's forward is cut into segments (a UNet resnet or transformer block, a
 * CLIP layer); a recording session runs each segment without recording gradients and keeps only what
 * it hands on; {@link #backward} then walks the segments in reverse, recomputes each one's forward
 * from its stored inputs with gradients recorded and backpropagates the upstream gradient into it
 * ({@code torch.autograd.backward(outputs, upstream)}, {@link JniUtils#backward}). That adds the
 * segment's parameter gradients to their {@code .grad} and gives the gradients of its inputs, which
 * become the upstream of the segments that produced them.
 *
 * <p>The tensors a segment reads are of three kinds: values of earlier segments of this session
 * (their gradients are summed over every reader, in reverse order of reading: the UNet's skip
 * connections, the time embedding every resnet reads), floating-point tensors from outside (the text
 * encoder's states feeding the UNet's cross-attention: their gradient is backpropagated into their own
 * graph once every reader is done; one without a graph just receives nothing), and constants (integer
 * tensors, and what the model declares with {@link #constant}). A segment's
 * outputs are handed to the caller as leaves that record gradients, so code outside the session (the
 * loss, the perturbation of the text states) builds an ordinary graph from them; what that graph
 * sends back to them is the upstream of their segment.
 *
 * <p>A segment is recomputed with an inner session, so a segment may itself be cut: with {@code
 * fine} on, the UNet's attention computed in query chunks ({@link Ops#attention(Recompute, NDArray,
 * NDArray, NDArray, int, NDArray)}) stores the chunk outputs only and recomputes one chunk's scores
 * at a time in backward. {@link #keep} marks a sub-segment that is run once with gradients recorded
 * and keeps its graph until its backward (the cheap parts around the attention).
 *
 * <p>{@link #DIRECT} (checkpointing off) runs every segment as it is called, with or without
 * gradients; each segment's intermediates are freed when it returns (DJL keeps every NDArray until
 * its scope closes; libtorch's autograd holds its own references to what backward needs).
 *
 * <p>One thread uses a session; one session per training micro-step ({@link Ops#recompute()}).
 */
public final class Recompute implements AutoCloseable {
    /** A segment with one output. {@code inner}: the session its own sub-segments go through. */
    @FunctionalInterface
    public interface Segment {
        NDArray apply(Recompute inner, NDList in);
    }

    /** A segment with several outputs. */
    @FunctionalInterface
    public interface Segments {
        NDList apply(Recompute inner, NDList in);
    }

    /** Runs every segment directly: checkpointing off, or a forward that records no gradients. */
    public static final Recompute DIRECT = new Recompute(false, false);

    private enum Kind {
        /** a value of an earlier segment of this session that depends on something recording gradients */
        PRODUCED,
        /** a floating-point tensor from outside the session, which may carry a graph */
        EXTERNAL,
        /** nothing to differentiate */
        CONSTANT
    }

    private record Slot(Seg seg, int index) {}

    private static final class Seg {
        final int index;
        final Segments fn;
        final boolean keep;
        final NDArray[] in;
        final Kind[] kinds;
        boolean needsGrad;
        NDArray[] out;
        NDArray[] heads;
        NDList kept;
        Map<NDArray, NDArray> keptLeaves;

        Seg(int index, Segments fn, boolean keep, int inputs) {
            this.index = index;
            this.fn = fn;
            this.keep = keep;
            this.in = new NDArray[inputs];
            this.kinds = new Kind[inputs];
        }

        void release() {
            closeAll(out);
            closeAll(heads);
            if (kept != null) {
                kept.close();
            }
            if (keptLeaves != null) {
                keptLeaves.values().forEach(NDArray::close);
            }
            out = null;
            heads = null;
            kept = null;
            keptLeaves = null;
        }
    }

    private final boolean record;
    private final boolean fine;
    private final List<Seg> segs = new ArrayList<>();
    /** Every output value and head of a recorded segment: its segment and output index. */
    private final IdentityHashMap<NDArray, Slot> slots = new IdentityHashMap<>();
    /** Inputs from outside that may record gradients: the index of the first segment that read each. */
    private final IdentityHashMap<NDArray, Integer> externals = new IdentityHashMap<>();
    /** Tensors a model declared constant ({@link #constant}). */
    private final IdentityHashMap<NDArray, Boolean> constants = new IdentityHashMap<>();

    /**
     * @param record keep segment inputs and recompute in {@link #backward} (checkpointing on)
     * @param fine recompute a segment through an inner recording session, so that its own
     *     sub-segments (attention chunks) are recomputed one at a time in its backward
     */
    Recompute(boolean record, boolean fine) {
        this.record = record;
        this.fine = fine;
    }

    /** A recording session (checkpointing on); {@code fine}: attention chunks recomputed one at a time. */
    public static Recompute recording(boolean fine) {
        return new Recompute(true, fine);
    }

    /** True when segments run now are stored and recomputed (a recording session while gradients are recorded). */
    public boolean recording() {
        return record && JniUtils.isGradMode();
    }

    /**
     * Declares {@code x} (a tensor the model made from data: the timestep embedding's sinusoids, a
     * causal mask) a constant for the segments that read it: no gradient is computed for it. Any
     * other floating-point input from outside the session is taken to possibly carry a graph (DJL 0.36
     * reports {@code requires_grad} for leaves only), gets a gradient in backward, and that gradient
     * is backpropagated into it. Returns {@code x}.
     */
    public NDArray constant(NDArray x) {
        if (record) {
            constants.put(x, Boolean.TRUE);
        }
        return x;
    }

    /** Segments recorded and not yet backpropagated. */
    int recorded() {
        return segs.size();
    }

    /**
     * Runs {@code fn} on {@code inputs} as one checkpointed segment that may read parameters that
     * record gradients. Returns its output (a leaf recording gradients when this session records).
     */
    public NDArray run(Segment fn, NDArray... inputs) {
        return run(true, fn, inputs);
    }

    /**
     * {@link #run(Segment, NDArray...)}; {@code params}: whether {@code fn} may read parameters that
     * record gradients (false for a frozen layer: when none of its inputs needs a gradient either,
     * backward skips it and everything before it).
     */
    public NDArray run(boolean params, Segment fn, NDArray... inputs) {
        return one(segment((r, in) -> new NDList(fn.apply(r, in)), false, params, inputs));
    }

    /** {@link #run(Segment, NDArray...)} with several outputs. */
    public NDList runAll(Segments fn, NDArray... inputs) {
        return segment(fn, false, true, inputs);
    }

    /**
     * A segment that is not recomputed: run once with gradients recorded, its graph kept until its
     * backward. For the cheap pieces between recomputed sub-segments.
     */
    public NDArray keep(Segment fn, NDArray... inputs) {
        return one(segment((r, in) -> new NDList(fn.apply(r, in)), true, true, inputs));
    }

    /** {@link #keep(Segment, NDArray...)} with several outputs. */
    public NDList keepAll(Segments fn, NDArray... inputs) {
        return segment(fn, true, true, inputs);
    }

    private static NDArray one(NDList l) {
        return l.singletonOrThrow();
    }

    private NDList segment(Segments fn, boolean keep, boolean params, NDArray[] inputs) {
        if (!recording()) {
            return scoped(() -> fn.apply(DIRECT, new NDList(inputs)), inputs);
        }
        Seg s = new Seg(segs.size(), fn, keep, inputs.length);
        boolean needs = params;
        for (int j = 0; j < inputs.length; j++) {
            NDArray x = inputs[j];
            Slot slot = slots.get(x);
            if (slot != null) {
                s.in[j] = slot.seg.out[slot.index];
                s.kinds[j] = slot.seg.needsGrad ? Kind.PRODUCED : Kind.CONSTANT;
            } else if (constants.containsKey(x) || !x.getDataType().isFloating()) {
                s.in[j] = x;
                s.kinds[j] = Kind.CONSTANT;
            } else { // may carry a graph: DJL 0.36 cannot tell a non-leaf that records gradients from a constant
                s.in[j] = x;
                s.kinds[j] = Kind.EXTERNAL;
                externals.putIfAbsent(x, s.index);
            }
            needs |= s.kinds[j] != Kind.CONSTANT;
        }
        s.needsGrad = needs;
        NDList out;
        if (keep && needs) {
            s.keptLeaves = leaves(s);
            NDArray[] args = args(s, s.keptLeaves);
            s.kept = scoped(() -> fn.apply(DIRECT, new NDList(args)), args);
            out = new NDList(s.kept.size());
            for (NDArray k : s.kept) {
                out.add(k.stopGradient());
            }
        } else {
            JniUtils.setGradMode(false);
            try {
                out = scoped(() -> fn.apply(DIRECT, new NDList(s.in)), s.in);
            } finally {
                JniUtils.setGradMode(true);
            }
        }
        s.out = out.toArray(new NDArray[0]);
        for (int k = 0; k < s.out.length; k++) {
            for (NDArray x : inputs) {
                if (s.out[k] == x) {
                    throw new IllegalStateException("a checkpointed segment must not hand on its input as is");
                }
            }
            slots.put(s.out[k], new Slot(s, k));
        }
        segs.add(s);
        if (!needs) {
            return out;
        }
        s.heads = new NDArray[s.out.length];
        for (int k = 0; k < s.out.length; k++) {
            NDArray h = s.out[k].stopGradient();
            h.setRequiresGradient(true);
            s.heads[k] = h;
            slots.put(h, new Slot(s, k));
        }
        return new NDList(s.heads);
    }

    /**
     * Backward of a training step: {@code gc.backward(loss)} (gradients recorded), then, in a
     * recording session, every recorded segment recomputed in reverse with the gradient that reached
     * its outputs. Every trainable tensor's {@code .grad} then holds what one plain backward gives, up
     * to the order in which a value's gradient contributions are added (float32 reassociation; see
     * GradientCheckpointingTest). Call inside the step's GradientCollector, once.
     */
    public void backward(GradientCollector gc, NDArray loss) {
        gc.backward(loss);
        if (record) {
            drain();
        }
    }

    /** Backward from {@code roots} with upstream {@code grads}, then through the recorded segments. */
    private void backwardFrom(NDArray[] roots, NDArray[] grads) {
        backwardRoots(roots, grads, !segs.isEmpty());
        drain();
    }

    private void drain() {
        IdentityHashMap<NDArray, NDArray> grads = new IdentityHashMap<>();
        Map<Integer, IdentityHashMap<NDArray, NDArray>> pending = new HashMap<>();
        try {
            for (int i = segs.size() - 1; i >= 0; i--) {
                Seg s = segs.get(i);
                if (s.needsGrad) {
                    NDArray[] g = new NDArray[s.out.length];
                    boolean any = false;
                    for (int k = 0; k < g.length; k++) {
                        NDArray acc = grads.remove(s.out[k]);
                        NDArray hg = JniUtils.getGradient((PtNDArray) s.heads[k]);
                        g[k] = sum(acc, hg);
                        any |= g[k] != null;
                    }
                    if (any) {
                        Map<NDArray, NDArray> lg = s.keep ? backwardKept(s, g) : recompute(s, g);
                        for (Map.Entry<NDArray, NDArray> e : lg.entrySet()) {
                            NDArray v = e.getKey();
                            if (slots.containsKey(v)) {
                                grads.merge(v, e.getValue(), Recompute::sum);
                            } else {
                                pending.computeIfAbsent(externals.get(v), n -> new IdentityHashMap<>())
                                        .merge(v, e.getValue(), Recompute::sum);
                            }
                        }
                    }
                    closeAll(g);
                }
                s.release();
                IdentityHashMap<NDArray, NDArray> ext = pending.remove(i);
                if (ext != null) {
                    NDArray[] roots = ext.keySet().toArray(new NDArray[0]);
                    NDArray[] eg = new NDArray[roots.length];
                    for (int k = 0; k < roots.length; k++) {
                        eg[k] = ext.get(roots[k]);
                    }
                    backwardRoots(roots, eg, true);
                    closeAll(eg);
                }
            }
        } finally {
            grads.values().forEach(NDArray::close);
            pending.values().forEach(m -> m.values().forEach(NDArray::close));
            close();
        }
    }

    /** A {@link #keep} segment's backward: its kept graph, then the gradients of its leaves. */
    private Map<NDArray, NDArray> backwardKept(Seg s, NDArray[] g) {
        backwardRoots(s.kept.toArray(new NDArray[0]), g, false);
        return leafGradients(s.keptLeaves);
    }

    /** A checkpointed segment's backward: its forward again with gradients, then backward into it. */
    private Map<NDArray, NDArray> recompute(Seg s, NDArray[] g) {
        Map<NDArray, NDArray> out;
        boolean grad = JniUtils.isGradMode();
        JniUtils.setGradMode(true);
        try (NDScope scope = new NDScope()) {
            Map<NDArray, NDArray> leaves = leaves(s);
            NDArray[] args = args(s, leaves);
            try (Recompute inner = fine ? new Recompute(true, true) : DIRECT) {
                NDList outs = s.fn.apply(inner, new NDList(args));
                if (inner.record) {
                    inner.backwardFrom(outs.toArray(new NDArray[0]), g);
                } else {
                    backwardRoots(outs.toArray(new NDArray[0]), g, false);
                }
            }
            out = leafGradients(leaves);
            for (NDArray lg : out.values()) {
                NDScope.unregister(lg);
            }
        } finally {
            JniUtils.setGradMode(grad);
        }
        for (NDArray lg : out.values()) {
            NDScope.register(lg);
        }
        return out;
    }

    /** value -> its leaf's gradient, for the leaves a gradient reached. */
    private static Map<NDArray, NDArray> leafGradients(Map<NDArray, NDArray> leaves) {
        Map<NDArray, NDArray> out = new IdentityHashMap<>();
        for (Map.Entry<NDArray, NDArray> e : leaves.entrySet()) {
            NDArray lg = JniUtils.getGradient((PtNDArray) e.getValue());
            if (lg != null) {
                out.put(e.getKey(), lg);
            }
        }
        return out;
    }

    /** One leaf recording gradients per distinct input that needs a gradient, keyed by the input's value. */
    private static Map<NDArray, NDArray> leaves(Seg s) {
        Map<NDArray, NDArray> leaves = new IdentityHashMap<>();
        for (int j = 0; j < s.in.length; j++) {
            if (s.kinds[j] != Kind.CONSTANT) {
                leaves.computeIfAbsent(s.in[j], v -> {
                    NDArray l = v.stopGradient();
                    l.setRequiresGradient(true);
                    return l;
                });
            }
        }
        return leaves;
    }

    private static NDArray[] args(Seg s, Map<NDArray, NDArray> leaves) {
        NDArray[] a = new NDArray[s.in.length];
        for (int j = 0; j < a.length; j++) {
            a[j] = s.kinds[j] == Kind.CONSTANT ? s.in[j] : leaves.get(s.in[j]);
        }
        return a;
    }

    /**
     * {@code torch.autograd.backward(roots, grads)} as one backward of {@code anchor + sum_i
     * sum(root_i * grad_i)}: its gradient with respect to root_i is exactly grad_i (1 * g), the roots'
     * shared graph is traversed once, and {@code anchor} (a fresh leaf, 0) lets it run when no root
     * carries a graph (DJL 0.36 cannot tell: its requires_grad is false for every non-leaf).
     */
    private static void backwardRoots(NDArray[] roots, NDArray[] grads, boolean keepGraph) {
        boolean grad = JniUtils.isGradMode();
        JniUtils.setGradMode(true);
        try (NDScope scope = new NDScope()) {
            NDArray total = null;
            for (int i = 0; i < roots.length; i++) {
                if (grads[i] != null) {
                    NDArray t = roots[i].mul(grads[i]).sum();
                    total = total == null ? t : total.add(t);
                }
            }
            if (total == null) {
                return;
            }
            NDArray anchor = total.getManager().zeros(new ai.djl.ndarray.types.Shape(), total.getDataType(), total.getDevice());
            anchor.setRequiresGradient(true);
            total = total.add(anchor);
            JniUtils.backward((PtNDArray) total, (PtNDArray) total.onesLike(), keepGraph, false);
        } finally {
            JniUtils.setGradMode(grad);
        }
    }

    /** a + b (a first, as autograd adds a later gradient to an earlier one), either may be null; closes both. */
    private static NDArray sum(NDArray a, NDArray b) {
        if (a == null) {
            return b;
        }
        if (b == null) {
            return a;
        }
        NDArray s = a.add(b);
        a.close();
        b.close();
        return s;
    }

    /**
     * Runs {@code body} in its own NDScope and hands its outputs to the caller's scope: every
     * intermediate is freed when the segment returns (autograd keeps its own references to what
     * backward needs).
     */
    private static NDList scoped(Supplier<NDList> body, NDArray[] inputs) {
        NDList out;
        try (NDScope scope = new NDScope()) {
            out = body.get();
            NDScope.unregister(out);
        }
        for (NDArray o : out) {
            boolean input = false;
            for (NDArray x : inputs) {
                input |= o == x;
            }
            if (!input) {
                NDScope.register(o);
            }
        }
        return out;
    }

    private static void closeAll(NDArray[] a) {
        if (a != null) {
            for (NDArray x : a) {
                if (x != null) {
                    x.close();
                }
            }
        }
    }

    /** Frees what the session still holds (everything is freed by {@link #backward} already). */
    @Override
    public void close() {
        if (!record) {
            return;
        }
        for (Seg s : segs) {
            s.release();
        }
        segs.clear();
        slots.clear();
        externals.clear();
        constants.clear();
    }
}
