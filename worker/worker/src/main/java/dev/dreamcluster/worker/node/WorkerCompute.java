package dev.dreamcluster.worker.node;

import dev.dreamcluster.collective.Collective;
import dev.dreamcluster.collective.RingCollective;
import dev.dreamcluster.device.ComputeDevice;
import dev.dreamcluster.nccl.Nccl;
import dev.dreamcluster.nccl.NcclCollective;
import dev.dreamcluster.protocol.DataPlane;
import dev.dreamcluster.config.RunConfig;
import dev.dreamcluster.protocol.RunPlan;
import dev.dreamcluster.worker.train.ComputeConfig;
import java.nio.channels.ServerSocketChannel;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;

/**
 * A worker's compute side as its flags set it: the {@code --device} (null: train.json's) and what it
 * offers the coordinator for the data plane. A worker started on a GPU (gpu:N or auto) where NCCL
 * loads offers a fresh ncclUniqueId of its own when it identifies itself (one worker process serves
 * one run, so each run gets new ids); the coordinator keeps rank 0's. Everyone else offers the
 * reason it cannot run NCCL.
 */
public record WorkerCompute(String device, String collective, DataPlane.Offer offer, int optimizerThreads, boolean overlap,
        double capacity, Boolean stateOnDevice) {
    /** Collective timeout, as the ring's: a stalled or dead peer fails the step after this long. */
    static final Duration TIMEOUT = Duration.ofSeconds(60);

    public static WorkerCompute cpu() {
        return new WorkerCompute(null, null, DataPlane.Offer.ring("cpu worker"), 0, true, 0, null);
    }

    /**
     * @param device the --device flag or null; @param collective the --collective flag or null
     * @param optimizerThreads --optimizer_threads (0: one per core); @param overlap --overlap on
     */
    public static WorkerCompute probe(String device, String collective, int optimizerThreads, boolean overlap, double capacity,
            Boolean stateOnDevice) {
        ComputeDevice d = device == null ? ComputeDevice.CPU : ComputeDevice.parse(device, "--device");
        if (!d.isGpu() && !d.auto() || "ring".equals(collective)) {
            return new WorkerCompute(device, collective, DataPlane.Offer.ring(d.isGpu() || d.auto() ? "--collective ring" : "cpu worker"),
                    optimizerThreads, overlap, capacity, stateOnDevice);
        }
        String why = Nccl.unavailableReason();
        return new WorkerCompute(device, collective, why != null ? DataPlane.Offer.ring(why) : DataPlane.Offer.nccl(Nccl.newUniqueId()),
                optimizerThreads, overlap, capacity, stateOnDevice);
    }

    /** The run's compute settings (the plan's), with this worker's --device, optimizer threads and overlap. */
    ComputeConfig config(RunConfig run) {
        Map<String, Object> o = new HashMap<>();
        o.put("device", device);
        return ComputeConfig.fromRun(run.compute(), o).withNodeSettings(optimizerThreads, overlap).withCapacity(capacity)
                .withStateOnDevice(stateOnDevice);
    }

    /** The plan's data plane: NCCL on this worker's GPU, or the ring over {@code server}. */
    static Collective connect(RunPlan plan, int rank, ServerSocketChannel server, ComputeConfig compute) {
        if (plan.dataPlane().isNccl()) {
            ComputeDevice d = compute.device();
            return NcclCollective.connect(plan.dataPlane().uniqueId(), rank, plan.worldSize(), d.isGpu() ? d.gpuIndex() : 0, TIMEOUT);
        }
        return RingCollective.connect(plan.ringId(), RingCollective.decodeSecret(plan.runSecret()), rank,
                RingCollective.parsePeers(plan.peers()), server, TIMEOUT);
    }
}
