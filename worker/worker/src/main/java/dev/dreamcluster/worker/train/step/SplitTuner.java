package dev.dreamcluster.worker.train.step;

import dev.dreamcluster.worker.train.data.BatchSplit;
import dev.dreamcluster.worker.train.grad.GradSync;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@code --capacity auto}: measures each rank's compute time per image over a generation's first
 * steps (after one warm-up step: class loading and JIT), then, at the same step on every rank, cuts
 * the global batch in proportion to the speeds (one all-reduce of the per-rank times). The new cut
 * holds for the rest of the generation and is written into every checkpoint; a resume on as many
 * ranks replays it instead of measuring again.
 */
final class SplitTuner {
    private static final Logger LOG = LoggerFactory.getLogger(SplitTuner.class);
    static final int WARMUP = 1;
    static final int MEASURED = 3;

    private final DiffusionStep diffusion;
    private final GradSync sync;
    private final int gradAccum;
    private int seen;
    private double seconds;
    private boolean done;
    /** The startup check for a new micro-batch size (its shapes are measured before the first step that uses them). */
    private final java.util.function.IntConsumer checkOps;

    SplitTuner(DiffusionStep diffusion, GradSync sync, int gradAccum, boolean active, java.util.function.IntConsumer checkOps) {
        this.diffusion = diffusion;
        this.sync = sync;
        this.gradAccum = gradAccum;
        this.done = !active;
        this.checkOps = checkOps;
    }

    /** After a step whose forward and backward took {@code computeSeconds} on this rank. */
    void afterStep(double computeSeconds) {
        if (done) {
            return;
        }
        seen++;
        if (seen <= WARMUP) {
            return;
        }
        seconds += computeSeconds;
        if (seen < WARMUP + MEASURED) {
            return;
        }
        BatchSplit old = diffusion.split();
        double[] perImage = new double[sync.world()];
        perImage[sync.rank()] = seconds / ((double) MEASURED * gradAccum * old.counts()[sync.rank()]);
        sync.allReduce(perImage);
        double[] speed = new double[perImage.length];
        for (int r = 0; r < speed.length; r++) {
            speed[r] = 1 / Math.max(perImage[r], 1e-9);
        }
        BatchSplit next = BatchSplit.proportional(old.batch(), speed);
        checkOps.accept(next.counts()[sync.rank()]);
        diffusion.useSplit(next);
        done = true;
        LOG.info("batch cut measured: {} s per image per rank -> images per rank {} (was {})", java.util.Arrays.toString(perImage), next, old);
    }
}
