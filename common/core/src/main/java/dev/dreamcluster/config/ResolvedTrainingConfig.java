package dev.dreamcluster.config;

import java.util.List;

/**
 * The optimizer-related configuration of a run, resolved once from train.json, flags and
 * optimizer.json. Logged once and written into every checkpoint.
 *
 * @param unet null when {@code disable_unet_training}
 * @param textEncoder null when {@code disable_textenc_training}
 * @param textEncoderFreezing what of the text encoder is frozen (everything when it is not trained)
 * @param warnings notes for the user, in the order they arose
 */
public record ResolvedTrainingConfig(
        ComponentConfig unet,
        ComponentConfig textEncoder,
        TextEncoderFreezing textEncoderFreezing,
        List<String> warnings) {

    public ResolvedTrainingConfig {
        if (unet == null && textEncoder == null) {
            throw new IllegalArgumentException("nothing to train: both components are disabled");
        }
        java.util.Objects.requireNonNull(textEncoderFreezing, "textEncoderFreezing");
        warnings = List.copyOf(warnings);
    }
}
