package dev.dreamcluster.coordinator;

import java.nio.file.Path;

/**
 * What a coordinator needs to run one training run: how many workers to wait for, the plan hash it
 * computed from the model and resolved config, and the run's train.json, length and output folder.
 */
public record CoordinatorSettings(int minWorkers, long runId, String planHash, Path trainJson, int maxSteps, Path out,
        dev.dreamcluster.device.CollectiveKind collective) {
    /** With --collective auto. */
    public CoordinatorSettings(int minWorkers, long runId, String planHash, Path trainJson, int maxSteps, Path out) {
        this(minWorkers, runId, planHash, trainJson, maxSteps, out, dev.dreamcluster.device.CollectiveKind.AUTO);
    }

    public CoordinatorSettings {
        if (minWorkers < 1) {
            throw new IllegalArgumentException("min_workers must be >= 1, got " + minWorkers);
        }
    }
}
