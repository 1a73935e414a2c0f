package dev.dreamcluster.optim;

import dev.dreamcluster.config.ComponentConfig;
import dev.dreamcluster.config.OptimizerName;

/**
 * The fixed hyperparameters of an optimizer (the learning rate changes per step and is passed to
 * {@link Optimizer#step}). {@code eps} is ignored by Lion.
 */
public record OptimizerHyper(OptimizerName name, double beta1, double beta2, double eps, double weightDecay) {
    public OptimizerHyper {
        if (name == null) {
            throw new IllegalArgumentException("optimizer name is null");
        }
        if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1)) {
            throw new IllegalArgumentException("betas must be in [0, 1): " + beta1 + ", " + beta2);
        }
        if (!name.isLion() && !(eps > 0)) {
            throw new IllegalArgumentException("eps must be > 0 for " + name.key() + ": " + eps);
        }
        if (!(weightDecay >= 0) || !Double.isFinite(weightDecay)) {
            throw new IllegalArgumentException("weight_decay must be >= 0: " + weightDecay);
        }
    }

    public static OptimizerHyper of(ComponentConfig c) {
        return new OptimizerHyper(c.optimizer(), c.beta1(), c.beta2(), c.epsilon(), c.weightDecay());
    }
}
