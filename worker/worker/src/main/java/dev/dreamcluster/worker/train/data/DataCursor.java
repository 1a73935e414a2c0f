package dev.dreamcluster.worker.train.data;

import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.config.Json;
import dev.dreamcluster.config.TrainConfig;
import dev.dreamcluster.config.ValidationConfig;
import dev.dreamcluster.worker.data.AspectBuckets;
import dev.dreamcluster.worker.data.Batch;
import dev.dreamcluster.worker.data.EpochPlan;
import dev.dreamcluster.worker.data.ImageItem;
import java.util.Collection;
import java.util.List;
import java.util.function.Consumer;

/**
 * The run's position in its data: epoch, batch within the epoch's plan (bucket-homogeneous, seeded by
 * (seed, epoch)) and the micro-step every random draw derives from. The same on every rank: each rank
 * takes its slice of the same global batch. Memory: one epoch's plan (item references).
 */
public final class DataCursor {
    private final TrainConfig cfg;
    private final List<ImageItem> items;
    /** Validation images: held out by validation_config, else the first val_count training images. */
    private final List<ImageItem> validation;
    private final AspectBuckets buckets;
    private final int stepsPerEpoch;
    private final int totalSteps;
    private int epoch;
    private int batchIndex;
    private long microStep;
    private List<Batch> plan;

    public DataCursor(TrainConfig cfg, Consumer<String> warn) {
        this.cfg = cfg;
        DataSplit split = DataSplit.of(cfg, warn);
        this.items = split.train();
        this.validation = split.validation();
        if (items.isEmpty()) {
            throw new ConfigError("data_root: " + Json.quote(cfg.dataRoot().toString())
                    + " holds no readable images (allowed: a folder with jpg, jpeg, png or webp images; unreadable ones are skipped)");
        }
        this.buckets = new AspectBuckets(cfg.resolution());
        int perEpoch = EpochPlan.plan(items, buckets, cfg.batchSize(), cfg.condDropout(), cfg.seed(), 0).size();
        this.stepsPerEpoch = (perEpoch + cfg.gradAccum() - 1) / cfg.gradAccum();
        this.totalSteps = cfg.maxSteps() != null ? cfg.maxSteps() : Math.max(1, cfg.maxEpochs() * stepsPerEpoch);
        this.plan = EpochPlan.plan(items, buckets, cfg.batchSize(), cfg.condDropout(), cfg.seed(), 0);
    }

    /** Continues at a checkpoint's position. */
    public void resumeAt(int epoch, int batchIndex, long microStep) {
        this.epoch = epoch;
        this.batchIndex = batchIndex;
        this.microStep = microStep;
        this.plan = EpochPlan.plan(items, buckets, cfg.batchSize(), cfg.condDropout(), cfg.seed(), epoch);
    }

    /** The next global micro-batch (a new epoch's plan when this one is used up). */
    public Batch next() {
        if (batchIndex >= plan.size()) {
            epoch++;
            batchIndex = 0;
            plan = EpochPlan.plan(items, buckets, cfg.batchSize(), cfg.condDropout(), cfg.seed(), epoch);
        }
        return plan.get(batchIndex++);
    }

    /** The index of the next micro-step (the key of every random draw), then advanced. */
    public long takeMicroStep() {
        return microStep++;
    }

    public int epoch() {
        return epoch;
    }

    public int batchIndex() {
        return batchIndex;
    }

    public long microStep() {
        return microStep;
    }

    public int totalSteps() {
        return totalSteps;
    }

    /** True when the next step starts a new epoch (for save_every_n_epochs). */
    public boolean atEpochEnd() {
        return batchIndex >= plan.size();
    }

    /**
     * Optimizer steps between validations: validation_config's every_n_epochs in steps when given
     * (0.5: twice per epoch), else val_every_n_steps.
     */
    public int valEveryNSteps() {
        ValidationConfig v = cfg.features().validation();
        if (v == null) {
            return cfg.valEveryNSteps();
        }
        if (!v.active()) {
            return 0;
        }
        return v.everyNEpochs() >= 1 ? (int) Math.round(v.everyNEpochs()) * stepsPerEpoch
                : Math.max(1, stepsPerEpoch / (int) Math.max(1, Math.round(1 / v.everyNEpochs())));
    }

    public List<ImageItem> items() {
        return items;
    }

    public List<ImageItem> validation() {
        return validation;
    }

    public AspectBuckets buckets() {
        return buckets;
    }

    public int stepsPerEpoch() {
        return stepsPerEpoch;
    }

    /** The latent [h, w] of every bucket the training images fall in: the shapes the steps will run at. */
    public Collection<List<Integer>> latentSizes(int latentFactor) {
        java.util.Set<List<Integer>> sizes = new java.util.TreeSet<>(java.util.Comparator.comparing(Object::toString));
        for (ImageItem it : items) {
            int[] s = buckets.forSize(it.width(), it.height());
            sizes.add(List.of(s[1] / latentFactor, s[0] / latentFactor));
        }
        return sizes;
    }
}
