package dev.dreamcluster.worker.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.dreamcluster.device.PaddedShards;
import dev.dreamcluster.nccl.NcclCollective;
import dev.dreamcluster.worker.model.Tensors;
import java.util.Arrays;

/**
 * ZeRO-1 on a GPU with NCCL, ZeRO-Offload style: collectives on the device, the optimizer on the host.
 *
 * <pre>
 *   grads (model, GPU)  --concat, pad-->  [ r0 . | r1 . | r2 . ]  fp32, world x count   reduce-scatter (NCCL, in place)
 *   own block  --D2H-->  flat.grads[segment]                       the Java optimizer (8-bit state bitsandbytes-exact)
 *   flat.params[segment]  --H2D-->  own block of the padded fp32 masters on the device       all-gather (NCCL, in place)
 *   padded masters  --slice, cast-->  the model's tensors (fp16/fp32)
 * </pre>
 *
 * Why the optimizer stays on the host: the Java kernels are the reference-exact ones (AdamW8bit
 * and Lion8bit match bitsandbytes bit for bit, tested), DJL has no fused optimizer ops (its adam is
 * ~8 element-wise kernels and no 8-bit state), and per step only this rank's shard crosses PCIe
 * (1/world of the gradients down, 1/world of the parameters up). Not measured: no GPU was available.
 * Memory on the device: two padded fp32 buffers of the component (grads, masters).
 */
final class DeviceShards implements AutoCloseable {
    private final FlatParams flat;
    private final PaddedShards pad;
    private final int rank;
    private final NcclCollective nccl;
    private final NDManager manager;
    private final NDArray masters;

    DeviceShards(FlatParams flat, int[] bounds, int rank, NcclCollective nccl, NDManager deviceManager) {
        this.flat = flat;
        this.pad = new PaddedShards(bounds);
        this.rank = rank;
        this.nccl = nccl;
        this.manager = deviceManager.newSubManager();
        float[] padded = new float[Math.toIntExact(pad.paddedLength())];
        pad.pad(flat.params, padded);
        this.masters = Tensors.of(manager, padded, new Shape(padded.length));
    }

    /** Autograd's gradients times {@code scale}, summed over ranks on the device; this rank's segment into flat.grads. */
    void reduceGrads(float scale) {
        try (NDScope scope = new NDScope()) {
            NDList grads = new NDList();
            for (NDArray a : flat.arrays) {
                grads.add(a.getGradient().reshape(-1).toType(DataType.FLOAT32, false));
            }
            NDArray all = grads.size() == 1 ? grads.get(0) : NDArrays.concat(grads);
            NDList blocks = new NDList();
            for (int r = 0; r < pad.world(); r++) {
                blocks.add(all.get(new NDIndex(pad.flatOffset(r) + ":" + (pad.flatOffset(r) + pad.length(r)))));
                long tail = pad.count() - pad.length(r);
                if (tail > 0) {
                    blocks.add(manager.zeros(new Shape(tail), DataType.FLOAT32));
                }
            }
            NDArray buf = NDArrays.concat(blocks).mul(Tensors.of(manager, new float[] {scale}, new Shape()));
            nccl.reduceScatterDevice(DeviceAddress.of(buf, 0), pad.count(), NcclCollective.FLOAT32);
            long off = pad.paddedOffset(rank);
            float[] mine = buf.get(new NDIndex(off + ":" + (off + pad.length(rank)))).toFloatArray();
            System.arraycopy(mine, 0, flat.grads, pad.flatOffset(rank), mine.length);
        }
    }

    /** This rank's updated segment up, every segment all-gathered on the device, the model's tensors refreshed from it. */
    void gatherAndWriteBack() {
        int from = pad.flatOffset(rank);
        long off = pad.paddedOffset(rank);
        try (NDScope scope = new NDScope()) {
            NDArray seg = Tensors.of(manager, Arrays.copyOfRange(flat.params, from, from + pad.length(rank)), new Shape(pad.length(rank)));
            masters.set(new NDIndex(off + ":" + (off + pad.length(rank))), seg);
            nccl.allGatherDevice(DeviceAddress.of(masters, 0), pad.count(), NcclCollective.FLOAT32);
            for (int i = 0; i < flat.arrays.size(); i++) {
                NDArray a = flat.arrays.get(i);
                NDArray values = slice(flat.offsets[i], flat.sizes[i]).reshape(a.getShape()).toType(a.getDataType(), false);
                a.set(new NDIndex("..."), values);
                a.getGradient().set(new NDIndex("..."), 0);
            }
        }
        flat.refreshedOnDevice = true;
    }

    /** Flat range [start, start + n) of the (unpadded) buffer, from the padded masters: pieces from each rank's block. */
    private NDArray slice(int start, int n) {
        NDList parts = new NDList();
        int end = start + n;
        for (int r = 0; r < pad.world() && start < end; r++) {
            int lo = Math.max(start, pad.flatOffset(r));
            int hi = Math.min(end, pad.flatOffset(r) + pad.length(r));
            if (lo < hi) {
                long p = pad.paddedOffset(r) + (lo - pad.flatOffset(r));
                parts.add(masters.get(new NDIndex(p + ":" + (p + hi - lo))));
            }
        }
        return parts.size() == 1 ? parts.get(0) : NDArrays.concat(parts);
    }

    /** Every rank's fp32 masters into the host's flat.params (before a checkpoint or the final model). */
    void syncHost() {
        pad.unpad(masters.toFloatArray(), flat.params);
    }

    @Override
    public void close() {
        manager.close();
    }
}
