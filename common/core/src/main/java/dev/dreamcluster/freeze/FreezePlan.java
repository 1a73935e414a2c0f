package dev.dreamcluster.freeze;

import dev.dreamcluster.config.ResolvedTrainingConfig;
import dev.dreamcluster.config.TextEncoderFreezing;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Maps Hugging Face / diffusers parameter names to trainable or frozen. The VAE is never trained; a
 * disabled component is frozen whole; text-encoder parameters follow {@link TextEncoderFreezing}:
 * {@code text_model.embeddings.*}, {@code text_model.encoder.layers.{i}.*} and {@code
 * text_model.final_layer_norm.*} (the whole of a CLIPTextModel, so any other name is an error).
 */
public final class FreezePlan {
    private static final Pattern LAYER = Pattern.compile("^text_model\\.encoder\\.layers\\.(\\d+)\\..+");

    private final boolean unetTrained;
    private final boolean textEncoderTrained;
    private final TextEncoderFreezing te;
    private final boolean[] layerFrozen;

    public FreezePlan(boolean unetTrained, boolean textEncoderTrained, TextEncoderFreezing te) {
        this.unetTrained = unetTrained;
        this.textEncoderTrained = textEncoderTrained;
        this.te = te;
        this.layerFrozen = new boolean[te.numLayers()];
        for (int i : te.frozenLayers()) {
            layerFrozen[i] = true;
        }
    }

    public static FreezePlan of(ResolvedTrainingConfig c) {
        return new FreezePlan(c.unet() != null, c.textEncoder() != null, c.textEncoderFreezing());
    }

    /** Whether the optimizer may change {@code name} of {@code component}. */
    public boolean isTrainable(Component component, String name) {
        return switch (component) {
            case VAE -> false;
            case UNET -> unetTrained;
            case TEXT_ENCODER -> textEncoderTrained && textEncoderTrainable(name);
        };
    }

    private boolean textEncoderTrainable(String name) {
        if (name.startsWith("text_model.embeddings.")) {
            return !te.embeddingsFrozen();
        }
        if (name.startsWith("text_model.final_layer_norm.")) {
            return !te.finalLayerNormFrozen();
        }
        Matcher m = LAYER.matcher(name);
        if (m.matches()) {
            int layer = Integer.parseInt(m.group(1));
            if (layer >= layerFrozen.length) {
                throw new IllegalArgumentException("text encoder parameter " + name + " names layer " + layer
                        + ", but the config resolved " + layerFrozen.length + " layers");
            }
            return !layerFrozen[layer];
        }
        throw new IllegalArgumentException("not a CLIPTextModel parameter name: " + name);
    }
}
