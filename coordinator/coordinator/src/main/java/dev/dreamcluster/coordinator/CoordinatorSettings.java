package dev.dreamcluster.coordinator;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * What a coordinator needs to run one training run, all resolved before it starts.
 *
 * @param minWorkers the fewest workers a generation may have
 * @param startWorkers workers to wait for before the first generation (min_workers, or the embedded
 *     cluster's --workers)
 * @param maxWorkers the most a generation may have (workers beyond wait as spares)
 * @param planHash the hash of {@code manifest}
 * @param manifest the plan manifest computed here for a world of {@code startWorkers} (generation 0)
 * @param runConfig the resolved RunConfig as JSON, sent to every worker
 * @param resume the checkpoint the run continues from ("" for none)
 * @param out the run's output folder on this node (metrics.jsonl)
 * @param timeouts how long each wait may last
 * @param collective --collective: auto (NCCL when every rank offers an id, else the ring), ring or nccl
 */
public record CoordinatorSettings(int minWorkers, int startWorkers, int maxWorkers, long runId, String planHash, List<String> manifest,
        String runConfig, String resume, Path out, Timeouts timeouts, dev.dreamcluster.device.CollectiveKind collective) {

    /** With --collective auto. */
    public CoordinatorSettings(int minWorkers, int startWorkers, int maxWorkers, long runId, String planHash, List<String> manifest,
            String runConfig, String resume, Path out, Timeouts timeouts) {
        this(minWorkers, startWorkers, maxWorkers, runId, planHash, manifest, runConfig, resume, out, timeouts,
                dev.dreamcluster.device.CollectiveKind.AUTO);
    }

    /**
     * @param join min_workers must have joined within this after the start
     * @param rejoin after a shrink below min_workers, new workers must arrive within this
     * @param accept every rank must accept (or refuse) a plan within this (it hashes its model copy)
     * @param abort every rank must answer an AbortGeneration within this, else it counts as lost
     */
    public record Timeouts(Duration join, Duration rejoin, Duration accept, Duration abort) {
        public static final Timeouts DEFAULT = new Timeouts(Duration.ofMinutes(30), Duration.ofMinutes(10),
                Duration.ofMinutes(10), Duration.ofSeconds(30));
    }

    public CoordinatorSettings {
        if (minWorkers < 1 || startWorkers < minWorkers || maxWorkers < startWorkers) {
            throw new IllegalArgumentException("need 1 <= min_workers <= start workers <= max_workers, got " + minWorkers + ", "
                    + startWorkers + ", " + maxWorkers);
        }
        manifest = List.copyOf(manifest);
    }
}
