package dev.dreamcluster.worker.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import dev.dreamcluster.layout.ParamLayout;
import dev.dreamcluster.model.ParamSpec;
import dev.dreamcluster.optim.TensorSlice;
import dev.dreamcluster.worker.model.ModelWeights;
import java.util.ArrayList;
import java.util.List;

/**
 * The trainable tensors of one component laid end to end in two flat float arrays, exactly as the
 * run's {@link ParamLayout} part says (manifest order, the deterministic diffusers names, never DJL
 * ids; the offsets are the layout's, the plan hash covers them):
 *
 * <pre>
 *   params [ t0 | t1 | ... ]   grads [ t0 | t1 | ... ]     tensor i at offsets[i], numel[i] elements
 * </pre>
 *
 * The optimizer works on these arrays; the model's NDArrays are refreshed from them after each step.
 * Cost per step: one copy of every trainable gradient out and every parameter back (CPU memory speed).
 */
final class FlatParams {
    final List<String> names = new ArrayList<>();
    final List<NDArray> arrays = new ArrayList<>();
    final int[] offsets;
    final int[] sizes;
    final float[] params;
    final float[] grads;
    /** Set by {@link DeviceShards} when the NCCL all-gather already refreshed the model's tensors this step. */
    boolean refreshedOnDevice;

    /**
     * @param layout this component's part of the run's layout: which tensors are trainable, in which order, at which offsets
     * @param compute the tensors the model computes with (their gradients are read, their values refreshed)
     * @param masters the fp32 weights the flat parameters start from (the same object unless mixed precision or a GPU)
     */
    FlatParams(ParamLayout.Part layout, ModelWeights compute, ModelWeights masters) {
        List<ParamSpec> trainable = layout.trainable();
        long loaded = compute.manifest().stream().filter(p -> compute.isTrainable(p.name())).count();
        if (loaded != trainable.size()) {
            throw new IllegalStateException(layout.component() + ": the model has " + loaded + " trainable tensors, the layout "
                    + trainable.size());
        }
        offsets = layout.offsets().clone();
        sizes = new int[trainable.size()];
        for (int i = 0; i < trainable.size(); i++) {
            ParamSpec p = trainable.get(i);
            if (!compute.isTrainable(p.name())) {
                throw new IllegalStateException(layout.component() + ": the layout's trainable tensor " + p.name() + " is frozen in the model");
            }
            names.add(p.name());
            arrays.add(compute.get(p.name()));
            sizes[i] = Math.toIntExact(p.numel());
        }
        params = new float[layout.total()];
        grads = new float[layout.total()];
        for (int i = 0; i < arrays.size(); i++) {
            System.arraycopy(dev.dreamcluster.worker.model.Tensors.read(masters.get(names.get(i))), 0, params, offsets[i], sizes[i]);
        }
    }

    /** The current (master) values of trainable tensor {@code name}, or null when it is not trainable here. */
    float[] valuesOf(String name) {
        int i = names.indexOf(name);
        return i < 0 ? null : java.util.Arrays.copyOfRange(params, offsets[i], offsets[i] + sizes[i]);
    }

    boolean isEmpty() {
        return names.isEmpty();
    }

    /** Whole-tensor slices in buffer order, for the optimizer. */
    List<TensorSlice> slices() {
        List<TensorSlice> s = new ArrayList<>();
        for (int i = 0; i < names.size(); i++) {
            s.add(TensorSlice.whole(names.get(i), sizes[i]));
        }
        return s;
    }

    /** grads = autograd's accumulated gradients times {@code scale}; a tensor unused this step has 0. */
    void gatherGrads(float scale) {
        for (int i = 0; i < arrays.size(); i++) {
            try (NDArray grad = arrays.get(i).getGradient()) {
                dev.dreamcluster.worker.model.Tensors.readInto(grad, grads, offsets[i]);
            }
        }
        if (scale != 1f) { // x * 1f is x exactly: skip the pass (one micro-batch, no loss scale)
            for (int j = 0; j < grads.length; j++) {
                grads[j] *= scale;
            }
        }
    }

    /** Copies the flat parameters into the model's tensors (in place) and zeroes their gradients. */
    void writeBack(NDManager m) {
        if (refreshedOnDevice) { // the GPU path wrote values and zeroed gradients on the device
            refreshedOnDevice = false;
            return;
        }
        for (int i = 0; i < arrays.size(); i++) {
            NDArray a = arrays.get(i);
            // two copies per tensor: the slice into the manager's direct buffer, then index_put_ into
            // the parameter while that buffer is still open (it was five: a Java array, a duplicate and a
            // same-type cast more; 74 -> 30 ms a step on the medium preset)
            try (NDArray src = m.create(java.nio.FloatBuffer.wrap(params, offsets[i], sizes[i]), new Shape(a.getShape().getShape()))) {
                if (src.getDataType() == a.getDataType()) {
                    a.set(new NDIndex("..."), src);
                } else {
                    try (NDArray cast = src.toType(a.getDataType(), false)) { // the compute dtype: fp16 casts of the fp32 masters
                        a.set(new NDIndex("..."), cast);
                    }
                }
            }
            try (NDArray g = a.getGradient()) {
                g.set(new NDIndex("..."), 0);
            }
        }
    }
}
