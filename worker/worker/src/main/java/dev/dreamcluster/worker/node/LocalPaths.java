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

    /**
     * The checkpoint this node resumes from: its own copy of the run's starting checkpoint (generation
     * 0), else the plan's path (a later generation restarts from the last committed checkpoint), else none.
     */
    public Path resume(dev.dreamcluster.protocol.RunPlan plan) {
        if (plan.generation() == 0 && resume != null) {
            return resume;
        }
        return plan.resume() == null || plan.resume().isEmpty() ? null : Path.of(plan.resume());
    }
}
