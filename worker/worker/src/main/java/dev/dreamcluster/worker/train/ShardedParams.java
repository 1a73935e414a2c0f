package dev.dreamcluster.worker.train;

import dev.dreamcluster.collective.Collective;
import dev.dreamcluster.config.ComponentConfig;
import dev.dreamcluster.optim.Optimizer;
import dev.dreamcluster.optim.OptimizerHyper;
import dev.dreamcluster.layout.ParamLayout;
import dev.dreamcluster.optim.TensorSlice;
import java.util.List;

/**
 * ZeRO-1 for one component: the flat trainable buffer is cut into one contiguous segment per rank,
 * as the run's {@link ParamLayout} part says ({@link dev.dreamcluster.optim.ShardPlanner}: tensor cuts
 * only at multiples of 256), and this rank's optimizer holds state for its segment only.
 *
 * <pre>
 *   flat grads   [ rank 0 | rank 1 | ... ]   reduce-scatter (sum), then / world: the mean gradient
 *   shard        [ this rank's segment   ]   optimizer step on params and grads of the segment
 *   flat params  [ rank 0 | rank 1 | ... ]   all-gather: every replica gets every updated segment
 * </pre>
 *
 * With one rank (or no collective) the segment is the whole buffer and nothing is communicated.
 */
final class ShardedParams implements AutoCloseable {
    final FlatParams flat;
    final int[] bounds;
    final List<TensorSlice> slices;
    /** Every rank's slices (the same on every rank) and the hyperparameters (null: no optimizer), for gathers. */
    final List<List<TensorSlice>> plan;
    final OptimizerHyper hyper;
    private final int rank;
    private final Optimizer opt;
    private final float[] shardParams;
    private final float[] shardGrads;
    /** The GPU path (NCCL on device buffers), or null for the host path. */
    private DeviceShards device;

    ShardedParams(FlatParams flat, ParamLayout.Part layout, ComponentConfig config, int rank, int threads) {
        this.flat = flat;
        this.rank = rank;
        this.plan = layout.shards();
        this.hyper = config == null ? null : OptimizerHyper.of(config);
        this.bounds = layout.shardBounds().clone();
        this.slices = plan.get(rank);
        int len = bounds[rank + 1] - bounds[rank];
        this.shardParams = new float[len];
        this.shardGrads = new float[len];
        this.opt = config == null || flat.isEmpty() || slices.isEmpty() ? null
                : Optimizer.create(hyper, slices, threads);
    }

    /** Switches this component to device-side collectives (NCCL on a GPU replica). */
    void onDevice(dev.dreamcluster.nccl.NcclCollective nccl, ai.djl.ndarray.NDManager deviceManager) {
        if (!flat.isEmpty()) {
            device = new DeviceShards(flat, bounds, rank, nccl, deviceManager);
        }
    }

    /** The host's flat parameters complete again (the GPU path keeps other ranks' segments on the device). */
    void syncHost() {
        if (device != null) {
            device.syncHost();
        }
    }

    Optimizer optimizer() {
        return opt;
    }

    /** True on the GPU path: its collectives are device work and stay on the compute thread. */
    boolean onDevice() {
        return device != null;
    }

    /** Autograd's gradients (times {@code scale}) summed over ranks into this rank's segment, then / world. */
    void reduceGrads(Collective c, float scale) {
        if (device != null) {
            device.reduceGrads(scale);
            takeShard(c);
        } else {
            flattenGrads(scale);
            reduceFlat(c);
        }
    }

    /** The host path's first half, on the compute thread (it reads libtorch's gradients): the flat gradients times {@code scale}. */
    void flattenGrads(float scale) {
        flat.gatherGrads(scale);
    }

    /** The host path's second half, pure Java on any thread: the reduce-scatter, then this rank's segment / world. */
    void reduceFlat(Collective c) {
        if (c != null && c.worldSize() > 1 && !flat.isEmpty()) {
            c.reduceScatter(flat.grads, bounds);
        }
        takeShard(c);
    }

    private void takeShard(Collective c) {
        float invWorld = c == null ? 1f : 1f / c.worldSize();
        int from = bounds[rank];
        for (int i = 0; i < shardGrads.length; i++) {
            shardGrads[i] = flat.grads[from + i] * invWorld;
        }
    }

    double shardSumSquares() {
        double s = 0;
        for (float g : shardGrads) {
            s += (double) g * g;
        }
        return s;
    }

    void scaleGrads(float f) {
        for (int i = 0; i < shardGrads.length; i++) {
            shardGrads[i] *= f;
        }
    }

    /** One optimizer update of this rank's segment at {@code lr}, written into the flat parameters. */
    void step(double lr) {
        if (opt == null) {
            return;
        }
        int from = bounds[rank];
        System.arraycopy(flat.params, from, shardParams, 0, shardParams.length);
        opt.step(shardParams, shardGrads, lr);
        System.arraycopy(shardParams, 0, flat.params, from, shardParams.length);
    }

    /** Every rank's updated segment into every replica's flat parameters. */
    void gatherParams(Collective c) {
        if (device != null) {
            device.gatherAndWriteBack();
        } else if (c != null && c.worldSize() > 1 && !flat.isEmpty()) {
            c.allGather(flat.params, bounds);
        }
    }

    @Override
    public void close() {
        if (device != null) {
            device.close();
        }
        if (opt != null) {
            opt.close();
        }
    }
}
