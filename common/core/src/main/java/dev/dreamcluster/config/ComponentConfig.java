package dev.dreamcluster.config;

import java.util.Map;
import java.util.Objects;

/**
 * The resolved optimizer settings of one trained component (UNet or text encoder).
 *
 * @param epsilon always the resolved value; Lion does not use it (and {@code --json} prints null)
 * @param lrWarmupSteps optimizer updates of warmup, or null for "auto" (derived from the run length)
 * @param lrDecaySteps optimizer updates until the schedule ends, or null for "auto"
 * @param sources key (as in optimizer.json) to where the value came from: {@code cli}, {@code
 *     train.json}, {@code optimizer.json:base}, {@code optimizer.json:text_encoder_overrides}, {@code
 *     scaled S x unet} or {@code default}
 */
public record ComponentConfig(
        OptimizerName optimizer,
        double lr,
        double beta1,
        double beta2,
        double epsilon,
        double weightDecay,
        LrSchedulerName lrScheduler,
        Integer lrWarmupSteps,
        Integer lrDecaySteps,
        Map<String, String> sources) {

    /** The keys of a component, in the order they are printed. */
    public static final java.util.List<String> KEYS = java.util.List.of(
            "optimizer", "lr", "betas", "epsilon", "weight_decay", "lr_scheduler", "lr_warmup_steps", "lr_decay_steps");

    public ComponentConfig {
        Objects.requireNonNull(optimizer, "optimizer");
        Objects.requireNonNull(lrScheduler, "lrScheduler");
        if (!(lr > 0) || !Double.isFinite(lr)) {
            throw new IllegalArgumentException("lr must be finite and > 0, got " + lr);
        }
        if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1)) {
            throw new IllegalArgumentException("betas must be in [0, 1), got " + beta1 + ", " + beta2);
        }
        if (!optimizer.isLion() && !(epsilon > 0)) {
            throw new IllegalArgumentException("epsilon must be > 0 for " + optimizer.key() + ", got " + epsilon);
        }
        if (!(weightDecay >= 0) || !Double.isFinite(weightDecay)) {
            throw new IllegalArgumentException("weight_decay must be >= 0, got " + weightDecay);
        }
        if (lrWarmupSteps != null && lrWarmupSteps < 0) {
            throw new IllegalArgumentException("lr_warmup_steps must be >= 0, got " + lrWarmupSteps);
        }
        if (lrDecaySteps != null && lrDecaySteps < 1) {
            throw new IllegalArgumentException("lr_decay_steps must be >= 1 or auto, got " + lrDecaySteps);
        }
        if (lrWarmupSteps != null && lrDecaySteps != null && lrDecaySteps < lrWarmupSteps) {
            throw new IllegalArgumentException("lr_decay_steps " + lrDecaySteps + " < lr_warmup_steps " + lrWarmupSteps);
        }
        sources = Map.copyOf(sources);
    }

    /** Warmup and decay for a run of {@code totalOptimizerSteps} updates (spec section 3, auto values). */
    public LrSchedule schedule(long totalOptimizerSteps) {
        long decay = lrDecaySteps != null ? lrDecaySteps : (long) Math.floor(1.5 * totalOptimizerSteps);
        long warmup = lrWarmupSteps != null ? lrWarmupSteps : decay / 50;
        return new LrSchedule(lrScheduler, lr, warmup, decay);
    }
}
