package dev.dreamcluster.config;

/**
 * A component's learning rate as a pure function of the number of optimizer updates already taken
 * ({@code s}); diffusers' multipliers, except that warmup starts at {@code 1/w} so the first update
 * is never taken at lr 0 (spec section 3).
 *
 * @param warmup w, optimizer updates of linear warmup
 * @param decay T, the update at which the decaying schedules reach their end
 */
public record LrSchedule(LrSchedulerName name, double lr, long warmup, long decay) {
    /** polynomial's floor, as in diffusers' get_polynomial_decay_schedule_with_warmup. */
    public static final double POLY_LR_END = 1e-7;

    public LrSchedule {
        if (warmup < 0 || decay < 0) {
            throw new IllegalArgumentException("warmup and decay must be >= 0: " + warmup + ", " + decay);
        }
    }

    /** The learning rate of update number {@code s} (0-based). */
    public double lrAt(long s) {
        return lr * multiplier(s);
    }

    public double multiplier(long s) {
        if (name == LrSchedulerName.CONSTANT) {
            return 1.0;
        }
        if (s < warmup) {
            return (double) (s + 1) / warmup;
        }
        double span = Math.max(1, decay - warmup);
        double progress = (s - warmup) / span;
        return switch (name) {
            case CONSTANT, CONSTANT_WITH_WARMUP -> 1.0;
            case LINEAR -> Math.max(0.0, (decay - s) / span);
            case COSINE -> 0.5 * (1.0 + Math.cos(Math.PI * Math.min(1.0, progress)));
            case COSINE_WITH_RESTARTS -> progress >= 1.0 ? 0.0 : 0.5 * (1.0 + Math.cos(Math.PI * (progress % 1.0)));
            case POLYNOMIAL -> s > decay
                    ? POLY_LR_END / lr
                    : ((lr - POLY_LR_END) * (1.0 - progress) + POLY_LR_END) / lr;
        };
    }
}
