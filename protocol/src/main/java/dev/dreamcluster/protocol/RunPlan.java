package dev.dreamcluster.protocol;

import java.util.List;

/**
 * What the coordinator hands every worker of a run: the run id (also the ring's handshake), the plan
 * hash the worker must reproduce, each rank's data-plane address (rank order), the train.json every
 * node reads (same path on every node: an embedded cluster, or a shared volume), and the run length.
 */
public record RunPlan(long runId, String planHash, List<String> peers, String trainJson, int maxSteps, String out,
        DataPlane dataPlane) implements CborSerializable {
    public RunPlan {
        peers = List.copyOf(peers);
        dataPlane = dataPlane == null ? DataPlane.RING : dataPlane;
    }

    /** A plan over the TCP ring. */
    public RunPlan(long runId, String planHash, List<String> peers, String trainJson, int maxSteps, String out) {
        this(runId, planHash, peers, trainJson, maxSteps, out, DataPlane.RING);
    }

    public int worldSize() {
        return peers.size();
    }
}
