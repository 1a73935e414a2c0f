package dev.dreamcluster.worker.sample;

import ai.djl.ndarray.NDManager;
import dev.dreamcluster.diffusion.DdpmScheduler;
import dev.dreamcluster.model.UNetConfig;
import dev.dreamcluster.model.VaeConfig;
import dev.dreamcluster.tokenizer.ClipTokenizer;
import dev.dreamcluster.worker.model.ClipTextModel;
import dev.dreamcluster.worker.model.UNetModel;
import dev.dreamcluster.worker.model.VaeModel;

/**
 * The models one set of samples is drawn from: the trainer's current weights, or (with EMA) the
 * averaged ones. Borrowed, not owned: the trainer closes them.
 *
 * @param clipSkip the text-encoder layer training conditions on (as the samples must)
 */
public record SamplingModels(NDManager manager, ClipTextModel textEncoder, UNetModel unet, VaeModel vae, UNetConfig unetConfig,
        VaeConfig vaeConfig, ClipTokenizer tokenizer, DdpmScheduler schedule, int clipSkip) {
    /** Image sides must be multiples of this: the VAE's and the UNet's downsampling together. */
    public int sizeMultiple() {
        return (1 << (vaeConfig.blockOutChannels().size() - 1)) * (1 << (unetConfig.blockOutChannels().size() - 1));
    }

    int latentFactor() {
        return 1 << (vaeConfig.blockOutChannels().size() - 1);
    }
}
