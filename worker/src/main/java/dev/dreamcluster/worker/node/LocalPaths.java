package dev.dreamcluster.worker.node;

import dev.dreamcluster.config.RunConfig;
import java.nio.file.Path;

/**
 * Where this node keeps its copies of the run's inputs and writes its outputs ({@code worker --data
 * --model --out --resume}); null means the path the plan names (the coordinator's, right for an
 * embedded cluster or a shared volume). The plan hash proves the copies hold the same bytes.
 */
public record LocalPaths(Path data, Path model, Path out, Path resume) {
    public static final LocalPaths PLAN = new LocalPaths(null, null, null, null);

    /** The plan's run config with this node's paths. */
    public RunConfig apply(RunConfig plan) {
        return plan.withPaths(data, model, out);
    }

    /** The checkpoint this node resumes from: its own copy, else the plan's path, else none. */
    public Path resume(String planResume) {
        return resume != null ? resume : planResume == null || planResume.isEmpty() ? null : Path.of(planResume);
    }
}
