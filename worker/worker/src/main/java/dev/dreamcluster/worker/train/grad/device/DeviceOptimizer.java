package dev.dreamcluster.worker.train.grad.device;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import dev.dreamcluster.optim.OptimizerHyper;
import dev.dreamcluster.optim.OptimizerState;
import dev.dreamcluster.optim.TensorSlice;
import dev.dreamcluster.optim.TensorState;
import java.util.List;

/**
 * The optimizers of {@link dev.dreamcluster.optim} (AdamW, AdamW8bit, Lion, Lion8bit) as libtorch
 * operations on the device that holds the tensors: one implementation, run by DJL's CPU engine in CI
 * and by CUDA in production. It updates one shard, the {@link TensorSlice}s a rank owns laid end to end
 * (slice i at {@link #offset}(i)), in place inside a component's flat fp32 parameter buffer, reading
 * the flat gradient buffer; its state lives on the device beside them.
 *
 * <pre>
 *   DeviceOptimizer opt = DeviceOptimizer.create(hyper, shardSlices, deviceManager);
 *   opt.step(flatParams, flatGrads, from, lr);   // params[from + offset(i) ..] holds slice i; in place
 *   OptimizerState saved = opt.state();          // to the host, in the Java optimizer's format
 *   opt.load(saved);                             // back to the device
 * </pre>
 *
 * <p>Results equal the Java optimizer's ({@code Optimizer.create(hyper, slices, threads).step}) bit
 * for bit on DJL's CPU engine: parameters, fp32 moments, 8-bit codes and absmax (NaN compared as NaN,
 * whatever its payload). Each libtorch elementwise op rounds once and no two are fused, so the Java
 * scalar kernels' operations are issued one by one in their order; the 8-bit quantiser is exact by
 * construction ({@link BlockQuantizer}).
 *
 * <p>Per step, nothing leaves the device: the learning rate's scalars go up (a few 4-byte tensors),
 * no value is read back, no decision depends on the data. State leaves the device only through
 * {@link #state()}. Not thread-safe: one step at a time.
 */
public abstract class DeviceOptimizer implements AutoCloseable {
    /** Elements per unit of work (an elementwise chain or a [rows, 256] block chunk): bounds temporaries. */
    public static final long DEFAULT_CHUNK_ELEMENTS = 1L << 22;
    /** Runs of fewer contiguous full 8-bit blocks are gathered with the partial blocks instead of viewed. */
    static final int DEFAULT_FAST_MIN_BLOCKS = 64;

    /** How work is cut (tests make the pieces small). */
    record Tuning(long chunkElements, int fastMinBlocks, long copyChunkBytes) {
        Tuning {
            if (chunkElements < BlockLayout.B) {
                throw new IllegalArgumentException("chunkElements must be >= " + BlockLayout.B + ": " + chunkElements);
            }
            if (fastMinBlocks < 1) {
                throw new IllegalArgumentException("fastMinBlocks must be >= 1: " + fastMinBlocks);
            }
            if (copyChunkBytes < 1 || copyChunkBytes > DeviceCopy.MAX_CHUNK_BYTES) {
                throw new IllegalArgumentException("copyChunkBytes must be in [1, " + DeviceCopy.MAX_CHUNK_BYTES + "]: "
                        + copyChunkBytes);
            }
        }

        static final Tuning DEFAULT = new Tuning(DEFAULT_CHUNK_ELEMENTS, DEFAULT_FAST_MIN_BLOCKS, DeviceCopy.MAX_CHUNK_BYTES);
    }

    protected final OptimizerHyper hyper;
    /** Owns every persistent tensor of this optimizer (a sub-manager of the device manager). */
    protected final NDManager manager;
    protected final List<TensorSlice> slices;
    protected final long[] offsets;
    protected final long length;
    protected final Tuning tuning;
    private long step;

    DeviceOptimizer(OptimizerHyper hyper, List<TensorSlice> slices, NDManager deviceManager, Tuning tuning) {
        this.hyper = hyper;
        this.slices = List.copyOf(slices);
        this.tuning = tuning;
        this.offsets = new long[slices.size()];
        long off = 0;
        for (int i = 0; i < offsets.length; i++) {
            offsets[i] = off;
            off += slices.get(i).length();
        }
        this.length = off;
        this.manager = deviceManager.newSubManager();
    }

    /** A new optimizer of the kind {@code hyper.name()} names, zero state, on {@code deviceManager}'s device. */
    public static DeviceOptimizer create(OptimizerHyper hyper, List<TensorSlice> shardSlices, NDManager deviceManager) {
        return create(hyper, shardSlices, deviceManager, Tuning.DEFAULT);
    }

    static DeviceOptimizer create(OptimizerHyper hyper, List<TensorSlice> shardSlices, NDManager deviceManager,
            Tuning tuning) {
        if (hyper == null) {
            throw new IllegalArgumentException("hyper is null");
        }
        if (shardSlices == null || shardSlices.stream().anyMatch(java.util.Objects::isNull)) {
            throw new IllegalArgumentException("shard slices are null or hold a null: " + shardSlices);
        }
        if (deviceManager == null) {
            throw new IllegalArgumentException("deviceManager is null");
        }
        if (tuning == null) {
            throw new IllegalArgumentException("tuning is null");
        }
        return switch (hyper.name()) {
            case ADAMW -> new DeviceAdamW(hyper, shardSlices, deviceManager, tuning);
            case LION -> new DeviceLion(hyper, shardSlices, deviceManager, tuning);
            case ADAMW8BIT, LION8BIT -> new DeviceBlockwise8bit(hyper, shardSlices, deviceManager, tuning);
        };
    }

    /**
     * One update of the shard at learning rate {@code lr}: slice i is {@code flatParams[from + offset(i)
     * ..]} and {@code flatGrads[from + offset(i) ..]}, both 1-d fp32 tensors on this optimizer's device.
     * Parameters are updated in place; gradients are read only; elements outside [from, from +
     * length()) are not touched.
     */
    public final void step(NDArray flatParams, NDArray flatGrads, long from, double lr) {
        checkFlat("flatParams", flatParams, from);
        checkFlat("flatGrads", flatGrads, from);
        if (!(lr >= 0) || !Double.isFinite(lr)) {
            throw new IllegalArgumentException("lr must be finite and >= 0: " + lr);
        }
        prepare(lr, step + 1);
        step++;
        try (NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            update(flatParams, flatGrads, from, lr, step);
        }
    }

    private void checkFlat(String what, NDArray a, long from) {
        if (a == null) {
            throw new IllegalArgumentException(what + " is null");
        }
        if (a.getDataType() != DataType.FLOAT32 || a.getShape().dimension() != 1) {
            throw new IllegalArgumentException(what + " must be a 1-d float32 tensor: " + a.getDataType() + " "
                    + a.getShape());
        }
        if (!a.getDevice().equals(manager.getDevice())) {
            throw new IllegalArgumentException(what + " is on " + a.getDevice() + ", the optimizer on "
                    + manager.getDevice());
        }
        if (from < 0 || from > a.size() - length) {
            throw new IllegalArgumentException(what + " of " + a.size() + " elements from " + from
                    + " cannot hold the " + length + " elements of the shard");
        }
    }

    /** Checks the step's scalars before anything changes (step {@code t}, 1-based). */
    protected void prepare(double lr, long t) {}

    /** The update, inside an NDScope that closes every temporary. */
    protected abstract void update(NDArray params, NDArray grads, long from, double lr, long t);

    /** This optimizer's state copied to the host, in the Java optimizer's format (for checkpoints). */
    public final OptimizerState state() {
        try (NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            return new OptimizerState(hyper, step, download());
        }
    }

    protected abstract List<TensorState> download();

    /** Replaces this optimizer's state with {@code saved} (same slices, e.g. re-sharded), copied to the device. */
    public final void load(OptimizerState saved) {
        if (saved == null) {
            throw new IllegalArgumentException("saved state is null");
        }
        if (!saved.hyper().name().equals(hyper.name())) {
            throw new IllegalArgumentException("state is for " + saved.hyper().name().key() + ", optimizer is "
                    + hyper.name().key());
        }
        if (saved.tensors().size() != slices.size()) {
            throw new IllegalArgumentException("state has " + saved.tensors().size() + " slices, optimizer has "
                    + slices.size() + " (re-shard it first)");
        }
        if (saved.step() < 0) {
            throw new IllegalArgumentException("state step must be >= 0: " + saved.step());
        }
        for (int i = 0; i < slices.size(); i++) {
            TensorState s = saved.tensors().get(i);
            TensorState.Kind kind = TensorState.kindFor(hyper.name(), slices.get(i).numel());
            if (!s.slice.equals(slices.get(i)) || s.kind != kind) {
                throw new IllegalArgumentException("state slice " + s.slice + " (" + s.kind
                        + ") does not match optimizer slice " + slices.get(i) + " (" + kind + ")");
            }
        }
        try (NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            upload(saved.tensors());
        }
        step = saved.step();
    }

    protected abstract void upload(List<TensorState> states);

    /** Bytes this optimizer holds on the device: its state (with the 8-bit padding lanes) and its tables. */
    public abstract long stateBytes();

    public OptimizerHyper hyper() {
        return hyper;
    }

    /** Updates taken so far. */
    public long stepCount() {
        return step;
    }

    /** Where slice {@code i} starts in the shard. */
    public long offset(int i) {
        return offsets[i];
    }

    /** Elements of the shard (sum of slice lengths). */
    public long length() {
        return length;
    }

    public List<TensorSlice> slices() {
        return slices;
    }

    @Override
    public void close() {
        manager.close();
    }

    // ---- shared helpers ----

    /**
     * {@code a}, taken out of the current NDScope (if the optimizer is built inside one): persistent
     * tensors belong to {@link #manager} and are closed with the optimizer.
     */
    static NDArray keep(NDArray a) {
        NDScope.unregister(a);
        return a;
    }

    /** A 0-dim fp32 scalar allocated by libtorch, in the current NDScope when there is one. */
    protected NDArray scalar(float v) {
        return BlockQuantizer.scalar(manager, v);
    }

    /** Elements [a, b) of a 1-d tensor, as a view. */
    static NDArray range(NDArray flat, long a, long b) {
        return flat.get(new ai.djl.ndarray.index.NDIndex().addSliceDim(a, b));
    }

    /** A float[] copy of {@code n} elements of a 1-d fp32 device tensor from {@code off}. */
    protected float[] read(NDArray t, long off, int n) {
        float[] out = new float[n];
        DeviceCopy.download(t, off, out, 0, n, tuning.copyChunkBytes());
        return out;
    }

    protected void write(float[] src, NDArray t, long off) {
        DeviceCopy.upload(src, 0, t, off, src.length, tuning.copyChunkBytes());
    }
}
