package dev.dreamcluster.worker.train.grad;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.dreamcluster.optim.OptimizerHyper;
import dev.dreamcluster.optim.OptimizerState;
import dev.dreamcluster.optim.TensorSlice;
import dev.dreamcluster.worker.train.grad.device.DeviceCopy;
import dev.dreamcluster.worker.train.grad.device.DeviceOptimizer;
import java.util.ArrayList;
import java.util.List;

/**
 * The flat buffers on the compute device, where the model computes: the fp32 masters ARE the model's
 * trainable tensors (each is a view of its range of the flat parameters), the flat gradients are
 * filled from each tensor's .grad (libtorch keeps .grad per tensor; it cannot be a view of a flat
 * buffer in DJL, so that is one copy on the device), and the optimizer ({@link DeviceOptimizer}: DJL
 * operations, its state on the device) updates this rank's shard of the flat parameters in place, which
 * updates the model. Nothing is copied between host and device per step but the shard's sum of
 * squares (one float) and the loss.
 *
 * <p>Passes over each element per step, all on the device: pull 1 (.grad into the flat gradients,
 * times the scale), zeroing .grad 1; over the shard: scaling and norm 1, the clip (when it clips) 1, the
 * optimizer 1. Memory: the flat fp32 parameters and gradients (8 bytes per trainable parameter), the
 * per-tensor .grad (4 more), the optimizer state of the shard. Sizes past 2 GiB are created by libtorch
 * and filled in 256 MiB chunks ({@link DeviceCopy}).
 */
public final class DeviceStore implements FlatStore {
    private final NDManager manager;
    private final List<NDArray> tensors;
    private final long[] offsets;
    private final long[] sizes;
    private final long shardFrom;
    private final long shardTo;
    private final NDArray params;
    private final NDArray grads;
    private final DeviceOptimizer optimizer;

    /**
     * @param initial the fp32 master values per trainable tensor, in layout order
     * @param shapes their shapes
     * @param deviceManager the compute device's manager (this store owns a sub-manager of it)
     */
    DeviceStore(List<float[]> initial, List<Shape> shapes, int[] offsets, long total, long shardFrom, long shardTo,
            OptimizerHyper hyper, List<TensorSlice> shardSlices, NDManager deviceManager) {
        this.manager = deviceManager.newSubManager();
        this.offsets = new long[initial.size()];
        this.sizes = new long[initial.size()];
        this.shardFrom = shardFrom;
        this.shardTo = shardTo;
        this.params = DeviceCopy.zeros(manager, total, DataType.FLOAT32);
        this.grads = DeviceCopy.zeros(manager, total, DataType.FLOAT32);
        this.tensors = new ArrayList<>();
        for (int i = 0; i < initial.size(); i++) {
            this.offsets[i] = offsets[i];
            this.sizes[i] = initial.get(i).length;
            DeviceCopy.upload(initial.get(i), 0, params, offsets[i], initial.get(i).length);
            NDArray view = params.get(new NDIndex(offsets[i] + ":" + (offsets[i] + sizes[i]))).reshape(shapes.get(i));
            view.setRequiresGradient(true); // a leaf: its base (the flat buffer) records no gradient
            tensors.add(view);
        }
        this.optimizer = hyper == null || initial.isEmpty() || shardSlices.isEmpty() ? null
                : DeviceOptimizer.create(hyper, shardSlices, manager);
    }

    /** The model's trainable tensors: views of the flat fp32 parameters, in layout order. */
    List<NDArray> tensors() {
        return tensors;
    }

    /** The flat fp32 parameters and gradients on the device (for the device collectives). */
    NDArray deviceParams() {
        return params;
    }

    NDArray deviceGrads() {
        return grads;
    }

    @Override
    public void pullGrads(float scale) {
        for (int i = 0; i < tensors.size(); i++) {
            try (NDArray g = tensors.get(i).getGradient(); NDArray flat = g.reshape(-1)) {
                NDIndex range = new NDIndex(offsets[i] + ":" + (offsets[i] + sizes[i]));
                if (scale == 1f) {
                    grads.set(range, flat);
                } else {
                    try (NDArray s = scalar(scale); NDArray scaled = flat.mul(s)) {
                        grads.set(range, scaled);
                    }
                }
            }
        }
    }

    private NDArray scalar(float v) {
        return dev.dreamcluster.worker.model.Tensors.of(manager, new float[] {v}, new Shape()).toDevice(manager.getDevice(), false);
    }

    @Override
    public double scaleShard(float scale) {
        if (shardTo == shardFrom) {
            return 0;
        }
        try (NDArray shard = grads.get(new NDIndex(shardFrom + ":" + shardTo)); NDArray s = scalar(scale)) {
            shard.muli(s);
            // in float64, as the host path sums: one pass; one number leaves the device
            try (NDArray wide = shard.toType(DataType.FLOAT64, true); NDArray sq = wide.square(); NDArray sum = sq.sum()) {
                return sum.getDouble();
            }
        }
    }

    @Override
    public void clipShard(float coef) {
        if (shardTo == shardFrom) {
            return;
        }
        try (NDArray shard = grads.get(new NDIndex(shardFrom + ":" + shardTo)); NDArray s = scalar(coef)) {
            shard.muli(s);
        }
    }

    @Override
    public void update(double lr) {
        if (optimizer != null) {
            optimizer.step(params, grads, shardFrom, lr);
        }
    }

    /** The update already wrote into the model's tensors (they are views); only .grad is zeroed. */
    @Override
    public void pushParams() {
        zeroGrads();
    }

    @Override
    public void zeroGrads() {
        for (NDArray a : tensors) {
            try (NDArray g = a.getGradient()) {
                g.set(new NDIndex("..."), 0);
            }
        }
    }

    @Override
    public int firstNonFiniteGrad() {
        return FlatStore.firstNonFiniteGrad(tensors);
    }

    @Override
    public float[] hostParams() {
        return null;
    }

    @Override
    public float[] hostGrads() {
        return null;
    }

    @Override
    public float[] values(int i) {
        float[] v = new float[Math.toIntExact(sizes[i])];
        DeviceCopy.download(params, offsets[i], v, 0, v.length);
        return v;
    }

    @Override
    public OptimizerState optimizerState() {
        return optimizer == null ? null : optimizer.state();
    }

    @Override
    public void loadOptimizerState(OptimizerState state) {
        optimizer.load(state);
    }

    @Override
    public void close() {
        if (optimizer != null) {
            optimizer.close();
        }
        manager.close();
    }
}
