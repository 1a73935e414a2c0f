package dev.dreamcluster.protocol;

import java.util.List;

/**
 * What the coordinator hands every worker of a run: the run id (also the ring's handshake), the plan
 * hash the worker must reproduce, each rank's data-plane address (rank order), the train.json every
 * node reads (same path on every node: an embedded cluster, or a shared volume), and the run length.
 *
 * {@code runSecret} (base64 of 32 random bytes, new for every run) is what ring connections prove
 * knowledge of (HMAC challenge-response): it travels only inside this plan, over the cluster's mutual
 * TLS, so the run id (which monitors see) opens nothing; {@link #toString} never prints it.
 */
public record RunPlan(long runId, String planHash, List<String> peers, String trainJson, int maxSteps, String out,
        String runSecret) implements CborSerializable {
    public RunPlan {
        peers = List.copyOf(peers);
    }

    @Override
    public String toString() {
        return "RunPlan[runId=" + runId + ", planHash=" + planHash + ", peers=" + peers + ", trainJson=" + trainJson
                + ", maxSteps=" + maxSteps + ", out=" + out + ", runSecret=(hidden)]";
    }

    public int worldSize() {
        return peers.size();
    }
}
