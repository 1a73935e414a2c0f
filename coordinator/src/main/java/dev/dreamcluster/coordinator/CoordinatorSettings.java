package dev.dreamcluster.coordinator;

import java.nio.file.Path;
import java.util.List;

/**
 * What a coordinator needs to run one training run, all resolved before it starts.
 *
 * @param minWorkers workers to wait for (the run's world size)
 * @param planHash the hash of {@code manifest}
 * @param manifest the plan manifest computed here for a world of {@code minWorkers}
 * @param runConfig the resolved RunConfig as JSON, sent to every worker
 * @param resume the checkpoint the run continues from ("" for none)
 * @param out the run's output folder on this node (metrics.jsonl)
 */
public record CoordinatorSettings(int minWorkers, long runId, String planHash, List<String> manifest, String runConfig,
        String resume, Path out) {
    public CoordinatorSettings {
        if (minWorkers < 1) {
            throw new IllegalArgumentException("min_workers must be >= 1, got " + minWorkers);
        }
        manifest = List.copyOf(manifest);
    }
}
