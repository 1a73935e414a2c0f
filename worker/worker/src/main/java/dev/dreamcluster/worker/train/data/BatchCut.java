package dev.dreamcluster.worker.train.data;

import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.worker.train.grad.GradSync;
import java.util.Arrays;

/**
 * How a generation decides its {@link BatchSplit}, the same on every rank: a checkpoint's recorded cut
 * when it was made by as many ranks (so a run and its resume stay bit-identical), else the ranks'
 * {@code --capacity} values (one all-reduce), else an even cut, measured and replaced after the
 * generation's first steps when every rank asked for {@code --capacity auto}.
 *
 * @param measure true when the cut is to be measured ({@code step.SplitTuner})
 */
public record BatchCut(BatchSplit split, boolean measure) {
    /** {@code capacity}: this rank's --capacity (0: none, -1: auto). */
    public static BatchCut agree(int batch, double capacity, GradSync sync, int[] recorded) {
        int world = sync.world();
        double[] caps = new double[world];
        caps[sync.rank()] = capacity;
        sync.allReduce(caps);
        boolean allGiven = Arrays.stream(caps).allMatch(c -> c > 0);
        boolean allAuto = Arrays.stream(caps).allMatch(c -> c < 0);
        boolean none = Arrays.stream(caps).allMatch(c -> c == 0);
        if (!allGiven && !allAuto && !none) {
            throw new ConfigError("--capacity: " + Arrays.toString(caps) + " (one per rank; 0 = not given, -1 = auto) is not allowed "
                    + "(allowed: a capacity for every worker, auto for every worker, or none)");
        }
        if (recorded != null && recorded.length == world) {
            return new BatchCut(new BatchSplit(recorded), false); // replayed: the checkpoint's cut
        }
        if (allGiven) {
            return new BatchCut(BatchSplit.proportional(batch, caps), false);
        }
        return new BatchCut(BatchSplit.equal(batch, world), allAuto && world > 1);
    }
}
