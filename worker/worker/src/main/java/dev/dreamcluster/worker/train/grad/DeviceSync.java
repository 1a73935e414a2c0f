package dev.dreamcluster.worker.train.grad;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import dev.dreamcluster.collective.Collective;
import dev.dreamcluster.device.PaddedShards;
import dev.dreamcluster.nccl.NcclCollective;
import dev.dreamcluster.worker.train.DeviceAddress;
import dev.dreamcluster.worker.train.grad.device.DeviceCopy;

/** The collectives of one {@link DeviceStore}'s flat buffers, in the form the run's data plane takes. */
abstract class DeviceSync implements AutoCloseable {
    abstract void reduceScatter();

    abstract void allGather();

    @Override
    public void close() {}

    /**
     * NCCL on the device memory. NCCL's reduce-scatter and all-gather give every rank the same count,
     * so the uneven ZeRO segments are laid into a padded device buffer ({@link PaddedShards}): two device
     * copies per collective (in, then this rank's segment back out), nothing on the host.
     */
    static final class Nccl extends DeviceSync {
        private final NcclCollective nccl;
        private final DeviceStore store;
        private final PaddedShards pad;
        private final NDManager manager;
        private final NDArray padded;

        Nccl(NcclCollective nccl, DeviceStore store, int[] bounds) {
            this.nccl = nccl;
            this.store = store;
            this.pad = new PaddedShards(bounds);
            this.manager = store.deviceGrads().getManager().newSubManager();
            this.padded = DeviceCopy.zeros(manager, pad.paddedLength(), DataType.FLOAT32);
        }

        @Override
        void reduceScatter() {
            NDArray grads = store.deviceGrads();
            for (int r = 0; r < pad.world(); r++) {
                copy(grads, pad.flatOffset(r), padded, pad.paddedOffset(r), pad.length(r));
            }
            nccl.reduceScatterDevice(DeviceAddress.of(padded, 0), pad.count(), NcclCollective.FLOAT32);
            int me = nccl.rank();
            copy(padded, pad.paddedOffset(me), grads, pad.flatOffset(me), pad.length(me));
        }

        @Override
        void allGather() {
            NDArray params = store.deviceParams();
            int me = nccl.rank();
            copy(params, pad.flatOffset(me), padded, pad.paddedOffset(me), pad.length(me));
            nccl.allGatherDevice(DeviceAddress.of(padded, 0), pad.count(), NcclCollective.FLOAT32);
            for (int r = 0; r < pad.world(); r++) {
                if (r != me) {
                    copy(padded, pad.paddedOffset(r), params, pad.flatOffset(r), pad.length(r));
                }
            }
        }

        private static void copy(NDArray from, long fromOff, NDArray to, long toOff, long n) {
            if (n == 0) {
                return;
            }
            try (NDArray src = from.get(new NDIndex(fromOff + ":" + (fromOff + n)))) {
                to.set(new NDIndex(toOff + ":" + (toOff + n)), src);
            }
        }

        @Override
        public void close() {
            manager.close();
        }
    }

    /**
     * The host collective (the TCP ring) on a host copy of the device buffers, in 256 MiB chunks: the
     * gradients down, this rank's summed shard back up; for the all-gather this rank's shard down, the
     * other ranks' segments back up. On a CPU "device" these are memory copies; on GPUs joined by the
     * ring they cross PCIe (the ring's path when NCCL cannot run).
     */
    static final class Staged extends DeviceSync {
        private final Collective collective;
        private final DeviceStore store;
        private final int[] bounds;
        private final float[] host;

        Staged(Collective collective, DeviceStore store, int[] bounds) {
            this.collective = collective;
            this.store = store;
            this.bounds = bounds.clone();
            this.host = new float[bounds[bounds.length - 1]];
        }

        @Override
        void reduceScatter() {
            DeviceCopy.download(store.deviceGrads(), 0, host, 0, host.length);
            collective.reduceScatter(host, bounds);
            int me = collective.rank();
            DeviceCopy.upload(host, bounds[me], store.deviceGrads(), bounds[me], bounds[me + 1] - bounds[me]);
        }

        @Override
        void allGather() {
            int me = collective.rank();
            DeviceCopy.download(store.deviceParams(), bounds[me], host, bounds[me], bounds[me + 1] - bounds[me]);
            collective.allGather(host, bounds);
            for (int r = 0; r < bounds.length - 1; r++) {
                if (r != me) {
                    DeviceCopy.upload(host, bounds[r], store.deviceParams(), bounds[r], bounds[r + 1] - bounds[r]);
                }
            }
        }
    }
}
