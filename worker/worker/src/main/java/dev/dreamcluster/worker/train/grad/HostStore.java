package dev.dreamcluster.worker.train.grad;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import dev.dreamcluster.optim.Optimizer;
import dev.dreamcluster.optim.OptimizerHyper;
import dev.dreamcluster.optim.OptimizerState;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.List;

/**
 * The flat buffers as Java float arrays and the Java optimizer kernels (bitsandbytes-exact 8-bit
 * state) updating this rank's shard in place. Gradients and parameters cross between libtorch and the
 * arrays through direct buffers that alias the tensors' memory ({@code toByteBuffer(true)} on a
 * contiguous CPU tensor), so each crossing is one copy.
 *
 * <p>Passes over each element per step: pull 1 (a bulk copy, or a scaling copy with grad_accum or a
 * loss scale), push 1, zeroing .grad 1 (libtorch's memset); over this rank's shard only: scaling and
 * norm 1, the clip 1 (only when it clips), the optimizer 1 (reads p, g and its state, writes p and the
 * state). Compute tensors that are not fp32 CPU tensors (fp16, a GPU) go through a cast on the way.
 */
public final class HostStore implements FlatStore {
    private final List<NDArray> tensors;
    private final int[] offsets;
    private final int[] sizes;
    private final int shardFrom;
    private final int shardTo;
    private final float[] params;
    private final float[] grads;
    private final Optimizer optimizer;

    /**
     * @param tensors the model's trainable tensors (compute dtype and device), in layout order
     * @param initial the fp32 master values the flat parameters start from, per tensor
     * @param hyper the component's optimizer, or null (no update: a frozen component has no tensors)
     */
    HostStore(List<NDArray> tensors, List<float[]> initial, int[] offsets, int total, int shardFrom, int shardTo,
            OptimizerHyper hyper, List<dev.dreamcluster.optim.TensorSlice> shardSlices, int threads) {
        this.tensors = tensors;
        this.offsets = offsets.clone();
        this.sizes = new int[tensors.size()];
        this.shardFrom = shardFrom;
        this.shardTo = shardTo;
        this.params = new float[total];
        this.grads = new float[total];
        for (int i = 0; i < tensors.size(); i++) {
            sizes[i] = Math.toIntExact(tensors.get(i).size());
            System.arraycopy(initial.get(i), 0, params, offsets[i], sizes[i]);
        }
        this.optimizer = hyper == null || tensors.isEmpty() || shardSlices.isEmpty() ? null
                : Optimizer.create(hyper, shardSlices, threads);
    }

    @Override
    public void pullGrads(float scale) {
        for (int i = 0; i < tensors.size(); i++) {
            try (NDArray g = tensors.get(i).getGradient(); NDArray c = hostFloat(g)) {
                FloatBuffer src = c.toByteBuffer(true).order(ByteOrder.nativeOrder()).asFloatBuffer();
                int off = offsets[i];
                if (scale == 1f) { // x * 1f is x exactly: one bulk copy
                    src.get(grads, off, sizes[i]);
                } else {
                    for (int j = 0; j < sizes[i]; j++) {
                        grads[off + j] = src.get(j) * scale;
                    }
                }
            }
        }
    }

    /** {@code a} as a contiguous fp32 CPU tensor: itself when it already is one, else a copy (closed by the caller either way). */
    private static NDArray hostFloat(NDArray a) {
        NDArray flat = a.reshape(-1); // a view when contiguous; autograd's transposed weight gradients get a contiguous copy
        if (flat.getDataType() == DataType.FLOAT32 && flat.getDevice().equals(ai.djl.Device.cpu())) {
            return flat;
        }
        try (flat) {
            return flat.toDevice(ai.djl.Device.cpu(), true).toType(DataType.FLOAT32, true);
        }
    }

    @Override
    public double scaleShard(float scale) {
        double s = 0;
        for (int i = shardFrom; i < shardTo; i++) {
            float g = grads[i] * scale;
            grads[i] = g;
            s += (double) g * g;
        }
        return s;
    }

    /** A second pass over the shard: the norm is only known after every rank's sum. */
    @Override
    public void clipShard(float coef) {
        for (int i = shardFrom; i < shardTo; i++) {
            grads[i] *= coef;
        }
    }

    @Override
    public void update(double lr) {
        if (optimizer != null) {
            optimizer.step(params, grads, shardFrom, lr);
        }
    }

    @Override
    public void pushParams() {
        for (int i = 0; i < tensors.size(); i++) {
            NDArray a = tensors.get(i);
            if (a.getDataType() == DataType.FLOAT32 && a.getDevice().equals(ai.djl.Device.cpu())) {
                // write straight into the parameter's memory (as p.data.copy_ would), one copy; parameters
                // are contiguous (ModelWeights creates them as clones), so the buffer aliases them
                a.toByteBuffer(true).order(ByteOrder.nativeOrder()).asFloatBuffer().put(params, offsets[i], sizes[i]);
            } else {
                try (NDArray src = a.getManager().create(FloatBuffer.wrap(params, offsets[i], sizes[i]), a.getShape());
                        NDArray cast = src.toType(a.getDataType(), true).toDevice(a.getDevice(), false)) {
                    a.set(new ai.djl.ndarray.index.NDIndex("..."), cast); // fp16 casts of the fp32 masters, or a GPU replica
                }
            }
        }
        zeroGrads();
    }

    @Override
    public void zeroGrads() {
        for (NDArray a : tensors) {
            try (NDArray g = a.getGradient()) {
                g.set(new ai.djl.ndarray.index.NDIndex("..."), 0);
            }
        }
    }

    @Override
    public int firstNonFiniteGrad() {
        return FlatStore.firstNonFiniteGrad(tensors);
    }

    @Override
    public float[] hostParams() {
        return params;
    }

    @Override
    public float[] hostGrads() {
        return grads;
    }

    @Override
    public float[] values(int i) {
        return java.util.Arrays.copyOfRange(params, offsets[i], offsets[i] + sizes[i]);
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
    }
}
