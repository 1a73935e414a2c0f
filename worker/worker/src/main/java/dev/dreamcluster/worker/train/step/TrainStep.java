package dev.dreamcluster.worker.train.step;

import dev.dreamcluster.config.TrainConfig;
import dev.dreamcluster.freeze.Component;
import dev.dreamcluster.io.StepMetrics;
import dev.dreamcluster.run.TrainingHalted;
import dev.dreamcluster.worker.train.ckpt.EmaWeights;
import dev.dreamcluster.worker.train.data.DataCursor;
import dev.dreamcluster.worker.train.grad.GradSync;
import dev.dreamcluster.worker.train.grad.ParamGroup;
import dev.dreamcluster.worker.train.bundle.ModelBundle;
import java.util.ArrayList;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One optimizer update, the same code for one process and every rank: grad_accum micro-batches, each
 * group's gradients pulled and reduce-scattered, one global L2 norm over every trainable tensor (shard
 * partial sums summed over ranks), clip_grad_norm, each group's update of its shard at its lr, the
 * all-gather and the parameters pushed back into the model. A step whose norm is not finite changes
 * nothing (as a GradScaler skips) and says why; more than max_skipped_steps in a row halt the run.
 */
public final class TrainStep {
    private static final Logger LOG = LoggerFactory.getLogger(TrainStep.class);

    private final TrainConfig cfg;
    private final ModelBundle bundle;
    private final DiffusionStep diffusion;
    private final DataCursor data;
    private final List<ParamGroup> groups;
    private final GradSync sync;
    private final EmaWeights ema;
    private final int maxSkippedSteps;
    private final SplitTuner tuner;
    private int step;
    private int skippedInARow;
    private int applied;

    public TrainStep(TrainConfig cfg, ModelBundle bundle, DiffusionStep diffusion, DataCursor data, List<ParamGroup> groups, GradSync sync,
            EmaWeights ema, int step, boolean measureSplit, java.util.function.IntConsumer checkOps) {
        this.cfg = cfg;
        this.bundle = bundle;
        this.diffusion = diffusion;
        this.data = data;
        this.groups = groups;
        this.sync = sync;
        this.ema = ema;
        this.step = step;
        this.maxSkippedSteps = cfg.maxSkippedSteps() != null ? cfg.maxSkippedSteps() : bundle.replica.scaler != null ? 20 : 3;
        this.tuner = new SplitTuner(diffusion, sync, cfg.gradAccum(), measureSplit, checkOps);
    }

    public StepMetrics run() {
        Phases time = new Phases();
        double loss = time.compute(() -> diffusion.accumulate(data));
        double forwardBackward = time.computeSeconds();
        float mean = (float) (1.0 / cfg.gradAccum() / bundle.replica.lossScale()); // fp16: the loss scale comes off here
        time.comm(() -> reduceScatter(mean));
        double[] sums = {0, loss};
        for (ParamGroup g : groups) {
            sums[0] += g.store().scaleShard(1f / sync.world()); // this rank's shard of the mean gradient, and its squares
        }
        time.comm(() -> sync.allReduce(sums));
        double gradNorm = Math.sqrt(sums[0]);
        String skipped = Double.isFinite(gradNorm) ? null : "non-finite gradient, first in " + firstNonFinite()
                + (bundle.replica.scaler == null ? "" : " (fp16 loss scale " + bundle.replica.lossScale() + " backs off)");
        double[] lrs = new double[groups.size()];
        if (skipped == null) {
            float clip = cfg.clipGradNorm() != null && gradNorm > cfg.clipGradNorm() ? (float) (cfg.clipGradNorm() / (gradNorm + 1e-6)) : 1f;
            for (int i = 0; i < lrs.length; i++) {
                lrs[i] = groups.get(i).lrAt(step);
            }
            List<GradSync.Pending> gathers = new ArrayList<>();
            time.optimizer(() -> update(lrs, clip, gathers));
            time.comm(() -> gathers.forEach(GradSync.Pending::join));
            time.compute(() -> groups.forEach(g -> g.store().pushParams()));
        } else {
            groups.forEach(g -> g.store().zeroGrads());
        }
        bundle.replica.afterStep(skipped == null, step);
        step++;
        count(skipped);
        tuner.afterStep(forwardBackward);
        double samples = (double) cfg.batchSize() * cfg.gradAccum(); // the global batch: every rank reports the same throughput
        return new StepMetrics(step, sums[1] / sync.world() / cfg.gradAccum(), lr(lrs, Component.UNET), lr(lrs, Component.TEXT_ENCODER),
                gradNorm, samples / time.seconds(), time.computeSeconds(), time.commSeconds(), time.optimizerSeconds(), Double.NaN, skipped);
    }

    /** Each group's gradients out of the model (compute thread) and reduce-scattered (on the communication thread, if any). */
    private void reduceScatter(float mean) {
        List<GradSync.Pending> pending = new ArrayList<>();
        for (ParamGroup g : groups) {
            g.store().pullGrads(mean);
            pending.add(sync.reduceScatter(g));
        }
        pending.forEach(GradSync.Pending::join);
    }

    /** Each group's update, its all-gather started as soon as its shard is updated. */
    private void update(double[] lrs, float clip, List<GradSync.Pending> gathers) {
        for (int i = 0; i < groups.size(); i++) {
            ParamGroup g = groups.get(i);
            if (clip != 1f) {
                g.store().clipShard(clip);
            }
            g.store().update(lrs[i]);
            gathers.add(sync.allGather(g));
        }
    }

    private double lr(double[] lrs, Component c) {
        for (int i = 0; i < groups.size(); i++) {
            if (groups.get(i).component() == c) {
                return lrs[i];
            }
        }
        return 0;
    }

    /** After step {@code step}: the EMA, and the run halted after too many skipped steps in a row. */
    private void count(String skipped) {
        if (skipped == null) {
            skippedInARow = 0;
            applied++;
            if (ema != null) {
                ema.afterStep(step);
            }
            return;
        }
        skippedInARow++;
        LOG.warn("step {}: update skipped: {} ({} in a row)", step, skipped, skippedInARow);
        if (skippedInARow > maxSkippedSteps) {
            throw new TrainingHalted("step " + step + ": " + skippedInARow + " consecutive steps skipped, more than max_skipped_steps "
                    + maxSkippedSteps + " allows: " + skipped + "; the weights have not changed since step " + (step - skippedInARow)
                    + " (lower the lr, set clip_grad_norm, or check the data)");
        }
    }

    /**
     * Where the first non-finite gradient is: "unet conv_out.weight" (and "on rank r" in a cluster run:
     * each rank looks in its own local gradients, still in libtorch's .grad, and one small all-reduce
     * tells every rank what each found). Runs only on a skipped step.
     */
    private String firstNonFinite() {
        int code = 0; // 1 + index over the groups' trainable tensors in order; 0: none on this rank
        int base = 0;
        for (ParamGroup g : groups) {
            int i = code == 0 ? g.store().firstNonFiniteGrad() : -1;
            if (i >= 0) {
                code = base + i + 1;
            }
            base += g.names().size();
        }
        double[] codes = new double[sync.world()]; // tensor counts are far below 2^24: exact as float32
        codes[sync.rank()] = code;
        sync.allReduce(codes);
        for (int r = 0; r < codes.length; r++) {
            int c = (int) codes[r] - 1;
            for (ParamGroup g : groups) {
                if (c >= 0 && c < g.names().size()) {
                    return g.component().folder() + " " + g.names().get(c) + (sync.world() > 1 ? " on rank " + r : "");
                }
                c -= g.names().size();
            }
        }
        return "the loss (every gradient tensor is finite; their squared sum overflowed)";
    }

    public int step() {
        return step;
    }

    /** Optimizer steps that changed the weights (applied, not skipped) in this process's run so far. */
    public int appliedSteps() {
        return applied;
    }
}
