package dev.dreamcluster.config;

import java.util.Arrays;
import java.util.Locale;

/**
 * EveryDream2's {@code loss_type} (train.py:1006-1031), with b = t / num_train_timesteps per sample
 * and per-sample weight w (min-SNR): {@code mse} mean(mse*w); {@code huber} mean(huber*w), delta 1;
 * {@code mse_huber} mean(mse*w*b) + mean(huber*w*(1-b)) (Huber at t=0, MSE near t=999: the code's
 * direction, which its documentation states inverted); {@code huber_mse} the mirror image.
 */
public enum LossType {
    MSE, HUBER, MSE_HUBER, HUBER_MSE;

    public String key() {
        return name().toLowerCase(Locale.ROOT);
    }

    public static LossType parse(String s, String where) {
        for (LossType t : values()) {
            if (t.key().equals(s)) {
                return t;
            }
        }
        // EveryDream2 trains plain MSE for any other name; here a typo is an error
        throw ConfigError.invalid(where, "\"" + s + "\"", "one of " + String.join(", ",
                Arrays.stream(values()).map(LossType::key).toList()));
    }
}
