package dev.dreamcluster.protocol;

import java.util.List;

/**
 * What the coordinator hands every worker of a run.
 *
 * @param runId the run
 * @param generation which generation of the run (0, then one more after each shrink or grow); the
 *     ring's handshake carries both
 * @param planHash SHA-256 of {@code manifest}: the worker recomputes it from its own model and data
 *     copies and {@code runConfig}, and refuses the plan when it differs
 * @param manifest the coordinator's plan manifest ({@code key<TAB>value} lines, PlanManifest), so a
 *     refusal can name what differs
 * @param peers each rank's data-plane (ring) address, rank order
 * @param runConfig the resolved RunConfig as JSON: workers never read train.json or optimizer.json
 * @param resume the checkpoint the run continues from, as the coordinator's node names it ("" for
 *     none); a worker may hold its own copy elsewhere ({@code worker --resume})
 * @param runSecret base64 of 32 random bytes, new for every generation: what ring connections prove
 *     knowledge of (HMAC challenge-response). It travels only inside this plan, over the cluster's
 *     mutual TLS, so the run id (which monitors see) opens nothing; {@link #toString} never prints it.
 * @param dataPlane the TCP ring, or NCCL with rank 0's unique id (every rank offered one)
 */
public record RunPlan(long runId, int generation, String planHash, List<String> manifest, List<String> peers, String runConfig,
        String resume, String runSecret, DataPlane dataPlane) implements CborSerializable {
    public RunPlan {
        manifest = List.copyOf(manifest);
        peers = List.copyOf(peers);
        dataPlane = dataPlane == null ? DataPlane.RING : dataPlane;
    }

    /** A plan over the TCP ring. */
    public RunPlan(long runId, int generation, String planHash, List<String> manifest, List<String> peers, String runConfig,
            String resume, String runSecret) {
        this(runId, generation, planHash, manifest, peers, runConfig, resume, runSecret, DataPlane.RING);
    }

    @Override
    public String toString() {
        return "RunPlan[runId=" + runId + ", generation=" + generation + ", planHash=" + planHash + ", peers=" + peers
                + ", resume=" + resume + ", manifest=(" + manifest.size() + " entries), runSecret=(hidden), dataPlane="
                + (dataPlane.isNccl() ? "nccl" : "ring") + "]";
    }

    public int worldSize() {
        return peers.size();
    }

    /** The ring's handshake id: connections from another run or generation are refused. */
    public long ringId() {
        return runId * 1_000_003L + generation;
    }
}
