package dev.dreamcluster.worker.train;

/**
 * torch.cuda.amp.GradScaler's dynamic loss scale with EveryDream2's settings (optimizers.py:85-91):
 * init 2^17.5, growth x2 after 25 finite steps in a row, backoff x0.5 and the update skipped on an
 * inf/NaN gradient. With {@code apply_grad_scaler_step_tweaks} (EveryDream2's default) the growth
 * factor becomes 1.8 / 1.6 / 1.3 / 1.15 at exactly step 500 / 1000 / 2000 / 4000, the backoff 1/factor
 * and the interval 100 / 200 / 500 / 2000 (optimizers.py:276-296). Like EveryDream2 it is not saved:
 * it restarts on resume. Used only for fp16 compute.
 */
public final class GradScaler {
    private final boolean stepTweaks;
    private double scale = Math.pow(2, 17.5);
    private double growth = 2;
    private double backoff = 0.5;
    private int interval = 25;
    private int goodSteps;

    public GradScaler(boolean stepTweaks) {
        this.stepTweaks = stepTweaks;
    }

    /** The factor the loss is multiplied by before backward (and the gradients divided by after). */
    public double scale() {
        return scale;
    }

    /**
     * After step {@code globalStep}'s gradients were checked: on inf/NaN the scale backs off (and the
     * caller skips the update); after {@code interval} finite steps in a row it grows.
     */
    public void update(boolean foundInf, int globalStep) {
        if (stepTweaks) {
            tweak(globalStep);
        }
        if (foundInf) {
            scale *= backoff;
            goodSteps = 0;
        } else if (++goodSteps >= interval) {
            scale *= growth;
            goodSteps = 0;
        }
    }

    private void tweak(int step) {
        double f = switch (step) {
            case 500 -> 1.8;
            case 1000 -> 1.6;
            case 2000 -> 1.3;
            case 4000 -> 1.15;
            default -> 0;
        };
        if (f > 0) {
            growth = f;
            backoff = 1 / f;
            interval = switch (step) {
                case 500 -> 100;
                case 1000 -> 200;
                case 2000 -> 500;
                default -> 2000;
            };
        }
    }

    double growthFactor() {
        return growth;
    }

    int growthInterval() {
        return interval;
    }
}
