package dev.dreamcluster.worker.example;

import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.config.Json;
import dev.dreamcluster.diffusion.DdpmScheduler;
import dev.dreamcluster.freeze.Component;
import dev.dreamcluster.model.DiffusersFolder;
import dev.dreamcluster.model.ParamSpec;
import dev.dreamcluster.model.Presets;
import dev.dreamcluster.model.VaeConfig;
import dev.dreamcluster.safetensors.DType;
import dev.dreamcluster.safetensors.SafetensorsFile;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The tiny example's model ({@code examples/tiny/tiny-model}): a diffusers folder of
 * {@link Presets#TINY_SHAPES} whose UNet and text encoder are randomly initialised (what the example
 * trains) and whose VAE is the shapes autoencoder shipped in {@code examples/tiny/shapes-vae/}
 * (trained by {@code dreamcluster train-vae}; see {@link VaeTrainer}). Without that folder the VAE is
 * random too, and the samples of a run show noise.
 */
public final class ExampleModel {
    /** The shipped VAE's folder name, beside the example's model folder. */
    public static final String VAE_FOLDER = "shapes-vae";

    private ExampleModel() {}

    /**
     * The example's noise schedule: Stable Diffusion's betas (scaled_linear 0.00085 to 0.012, 1000 steps)
     * with v-prediction, as SD 2.x 768 trains: at the noisiest timesteps the UNet then learns the picture
     * (v is mostly -x0 there) rather than the noise, which is what a short run needs for its samples to
     * take on the captions' colours.
     */
    public static DdpmScheduler schedule() {
        return DdpmScheduler.stableDiffusion(DdpmScheduler.Prediction.V_PREDICTION);
    }

    /**
     * Writes the example model to {@code dir}: {@code preset}'s UNet and text encoder drawn with
     * {@code seed}, the VAE from the diffusers VAE folder {@code vae} (its config.json and weights), or
     * a random VAE of the preset when {@code vae} is null; every tensor stored as {@code dtype}.
     */
    public static void write(Path dir, Presets preset, Path vae, long seed, DType dtype) {
        VaeConfig vaeConfig = vae == null ? preset.vae
                : VaeConfig.fromJson(Json.readObject(vae.resolve("config.json"), vae.resolve("config.json").toString()),
                        vae.resolve("config.json").toString());
        DiffusersFolder.Weights random = DiffusersFolder.randomInit(seed, preset.unet, preset.textEncoder, vaeConfig);
        SafetensorsFile trained = vae == null ? null : SafetensorsFile.open(vae.resolve(VaeTrainer.VAE_WEIGHTS));
        DiffusersFolder.Weights weights = (c, p) -> c == Component.VAE && trained != null ? checked(trained, p) : random.values(c, p);
        DiffusersFolder.write(dir, preset.unet, preset.textEncoder, vaeConfig, schedule(), preset.padsWithExclamation(), dtype, weights,
                null);
    }

    private static float[] checked(SafetensorsFile f, ParamSpec p) {
        var info = f.tensors().get(p.name());
        if (info == null) {
            throw new ConfigError(f.path() + " has no tensor " + p.name() + " (not a VAE of this config)");
        }
        float[] v = f.readFloats(p.name());
        if (v.length != p.numel()) {
            throw new ConfigError(f.path() + " at " + p.name() + ": " + v.length + " values, expected " + p.numel());
        }
        return v;
    }

    /** The shipped VAE folder beside {@code model}, or null when there is none. */
    public static Path shippedVae(Path model) {
        Path parent = model.toAbsolutePath().getParent();
        Path vae = parent == null ? null : parent.resolve(VAE_FOLDER);
        return vae != null && Files.isRegularFile(vae.resolve("config.json")) && Files.isRegularFile(vae.resolve(VaeTrainer.VAE_WEIGHTS))
                ? vae : null;
    }
}
