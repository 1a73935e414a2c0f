package dev.dreamcluster.cli;

import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.model.Presets;
import dev.dreamcluster.worker.example.VaeTrainer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code dreamcluster train-vae}: trains a preset's VAE on a folder of images (DJL autograd on the
 * same VAE forward the trainer runs) and writes it as a diffusers VAE folder. The tiny example's
 * {@code examples/tiny/shapes-vae} was made with it (see docs/training.md).
 */
@Command(name = "train-vae", mixinStandardHelpOptions = true,
        description = "Train a VAE (diffusers AutoencoderKL) on a folder of images and write it as a diffusers VAE folder"
                + " (config.json, diffusion_pytorch_model.safetensors).")
final class TrainVaeCommand implements Callable<Integer> {
    @Option(names = "--data", required = true, paramLabel = "DIR", description = "images (an EveryDream data folder)")
    Path data;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "the VAE folder to write")
    Path out;

    @Option(names = "--preset", paramLabel = "P", defaultValue = "tiny_shapes", description = "whose VAE shape (default: ${DEFAULT-VALUE})")
    String preset;

    @Option(names = "--steps", paramLabel = "N", description = "Adam steps (default 1200)")
    Integer steps;

    @Option(names = "--batch", paramLabel = "N", description = "images per step (default 8)")
    Integer batch;

    @Option(names = "--lr", paramLabel = "X", description = "peak learning rate, cosine to 0 (default 1e-3)")
    Double lr;

    @Option(names = "--kl", paramLabel = "X", description = "KL weight against the per-pixel MSE (default 1e-5)")
    Double kl;

    @Option(names = "--size", paramLabel = "PX", description = "training image side (default 64)")
    Integer size;

    @Option(names = "--seed", paramLabel = "N", defaultValue = "0")
    long seed;

    @Option(names = "--overwrite", description = "replace an existing --out folder")
    boolean overwrite;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        Presets p = preset(preset);
        VaeTrainer.Options d = VaeTrainer.Options.defaults();
        VaeTrainer.Options o = new VaeTrainer.Options(steps != null ? steps : d.steps(), batch != null ? batch : d.batch(),
                lr != null ? lr : d.lr(), kl != null ? kl : d.klWeight(), size != null ? size : d.size(), seed);
        if (o.steps() < 1 || o.batch() < 1) {
            throw ConfigError.invalid(o.steps() < 1 ? "--steps" : "--batch", Integer.toString(Math.min(o.steps(), o.batch())), ">= 1");
        }
        int multiple = 1 << (p.vae.blockOutChannels().size() - 1);
        if (o.size() < multiple || o.size() % multiple != 0) {
            throw ConfigError.invalid("--size", Integer.toString(o.size()), "a multiple of " + multiple + " (the VAE's downsampling)");
        }
        if (!Files.isDirectory(data)) {
            throw ConfigError.invalid("--data", data.toString(), "a folder of images");
        }
        if (Files.exists(out) && !overwrite) {
            throw ConfigError.invalid("--out", out.toString(), "a folder that does not exist yet (or --overwrite)");
        }
        var w = spec.commandLine().getOut();
        VaeTrainer.Report r = VaeTrainer.train(data, p.vae, o, out, line -> {
            w.println(line);
            w.flush();
        });
        w.println(String.format(Locale.ROOT, "wrote %s's VAE (%d parameters, scaling factor %.5f) trained on %d images to %s", p.key(),
                r.parameters(), r.scalingFactor(), r.images(), out));
        w.flush();
        return 0;
    }

    static Presets preset(String name) {
        for (Presets p : Presets.values()) {
            if (p.key().equalsIgnoreCase(name)) {
                return p;
            }
        }
        throw ConfigError.invalid("--preset", name, "one of tiny, tiny_shapes, medium, sd15, sd21");
    }
}
