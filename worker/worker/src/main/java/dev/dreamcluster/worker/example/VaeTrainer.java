package dev.dreamcluster.worker.example;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.GradientCollector;
import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.config.Json;
import dev.dreamcluster.freeze.Component;
import dev.dreamcluster.model.DiffusersFolder;
import dev.dreamcluster.model.ParamSpec;
import dev.dreamcluster.model.Presets;
import dev.dreamcluster.model.VaeConfig;
import dev.dreamcluster.safetensors.DType;
import dev.dreamcluster.safetensors.SafetensorsFile;
import dev.dreamcluster.worker.check.StartupCheck;
import dev.dreamcluster.worker.data.DatasetScanner;
import dev.dreamcluster.worker.data.ImageItem;
import dev.dreamcluster.worker.data.ImageLoader;
import dev.dreamcluster.worker.model.ModelWeights;
import dev.dreamcluster.worker.model.Ops;
import dev.dreamcluster.worker.model.Tensors;
import dev.dreamcluster.worker.model.VaeModel;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Consumer;

/**
 * Trains a diffusers AutoencoderKL ({@link VaeModel}, the same forward the trainer and the sampler
 * run) on a folder of images with DJL autograd: each step encodes a batch of {@code size}-pixel
 * images (loaded as the trainer loads them: centre-cropped, resized, in [-1, 1]; mirrored at random),
 * samples latents (mean + std * noise), decodes them, and takes one Adam step on
 * {@code mean((decoded - image)^2) + klWeight * KL(latents || N(0, 1))} (per latent element). The
 * learning rate follows a cosine from {@code lr} to 0. Convolution forms are measured first
 * ({@link StartupCheck}), as the trainer does.
 *
 * <p>At the end the scaling factor is measured (1 / the standard deviation of the sampled latents
 * over the data set, so the UNet sees unit-variance latents, as SD's 0.18215 was chosen) and the VAE
 * is written as diffusers writes one: {@code config.json} and {@code diffusion_pytorch_model.safetensors}
 * in one folder (the {@code vae/} folder of a model).
 */
public final class VaeTrainer {
    /**
     * @param steps Adam steps
     * @param batch images per step
     * @param lr peak learning rate (cosine to 0)
     * @param klWeight the KL term's weight against the per-pixel MSE
     * @param size training images are {@code size x size} pixels
     */
    public record Options(int steps, int batch, double lr, double klWeight, int size, long seed) {
        /**
         * What made examples/tiny/shapes-vae (reconstruction MSE 0.033 on the example's 480 images). At
         * lr 2e-3 the loss fell to 0.06 by step 800, then jumped back to 0.3 and ended at 0.11 (a VAE
         * whose reconstructions miss colours); at 1e-3 it falls steadily.
         */
        public static Options defaults() {
            return new Options(1200, 8, 1e-3, 1e-5, 64, 0);
        }
    }

    /** What a run did: losses at the start and end, the scaling factor, the time taken. */
    public record Report(double firstLoss, double lastLoss, double reconstructionMse, double scalingFactor, double seconds,
            int images, long parameters) {}

    private VaeTrainer() {}

    /**
     * Trains a VAE of {@code config}'s shape (its scaling factor is replaced by the measured one) on the
     * images under {@code data} and writes it to {@code out}.
     */
    public static Report train(Path data, VaeConfig config, Options o, Path out, Consumer<String> log) {
        long t0 = System.nanoTime();
        List<ImageItem> items = DatasetScanner.scan(data, log);
        if (items.isEmpty()) {
            throw new ConfigError("--data: " + Json.quote(data.toString()) + " holds no images");
        }
        int s = o.size();
        int per = 3 * s * s;
        float[][] images = new float[items.size()][per];
        for (int i = 0; i < items.size(); i++) {
            ImageLoader.load(items.get(i), s, s, images[i], 0);
        }
        DiffusersFolder layout = new DiffusersFolder(Path.of("."), Presets.TINY.unet, Presets.TINY.textEncoder, config, null);
        DiffusersFolder.Weights init = DiffusersFolder.randomInit(o.seed(), Presets.TINY.unet, Presets.TINY.textEncoder, config);
        Engine.getEngine("PyTorch"); // loads libtorch before the grad mode is read
        boolean grad = JniUtils.isGradMode();
        JniUtils.setGradMode(false);
        try (NDManager manager = NDManager.newBaseManager(Device.cpu());
                ModelWeights w = ModelWeights.zeros(manager, layout, Component.VAE, Device.cpu())) {
            long params = 0;
            Map<String, NDArray[]> adam = new LinkedHashMap<>();
            for (ParamSpec p : w.manifest()) {
                NDArray a = w.get(p.name());
                float[] v = init.values(Component.VAE, p);
                if (p.name().startsWith("quant_conv.")) {
                    // the log-variance half starts at -6 (std 0.05) with no input: the decoder first learns
                    // from nearly exact latents (from logvar 0 it sees mostly noise and learns only the mean colour)
                    int half = v.length / 2;
                    java.util.Arrays.fill(v, half, v.length, p.name().endsWith(".bias") ? -6f : 0f);
                }
                a.set(v);
                a.setRequiresGradient(true);
                adam.put(p.name(), new NDArray[] {manager.zeros(a.getShape()), manager.zeros(a.getShape())});
                params += p.numel();
            }
            Ops ops = new Ops();
            VaeModel vae = new VaeModel(config, w, ops);
            NDArray probe = manager.zeros(new Shape(o.batch(), 3, s, s), DataType.FLOAT32);
            StartupCheck.run(ops, manager, DataType.FLOAT32, () -> vae.decode(vae.encode(probe).get(0)));
            log.accept(String.format(Locale.ROOT, "vae: %d parameters, %d images of %d px, %d steps of %d", params, items.size(), s,
                    o.steps(), o.batch()));
            SplittableRandom rnd = new SplittableRandom(o.seed());
            double first = Double.NaN;
            double recent = 0;
            int recentN = 0;
            float[] batch = new float[o.batch() * per];
            for (int step = 1; step <= o.steps(); step++) {
                for (int b = 0; b < o.batch(); b++) {
                    float[] img = images[rnd.nextInt(images.length)];
                    if (rnd.nextBoolean()) {
                        System.arraycopy(img, 0, batch, b * per, per);
                    } else {
                        mirror(img, s, batch, b * per);
                    }
                }
                float loss;
                try (NDScope scope = new NDScope()) {
                    NDArray x = Tensors.of(manager, batch, new Shape(o.batch(), 3, s, s));
                    int lh = s >> (config.blockOutChannels().size() - 1);
                    float[] eps = new float[o.batch() * config.latentChannels() * lh * lh];
                    for (int i = 0; i < eps.length; i++) {
                        eps[i] = (float) rnd.nextGaussian();
                    }
                    NDArray noise = Tensors.of(manager, eps, new Shape(o.batch(), config.latentChannels(), lh, lh));
                    try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                        NDList dist = vae.encode(x);
                        NDArray mean = dist.get(0);
                        NDArray logvar = dist.get(1);
                        NDArray z = mean.add(logvar.mul(0.5f).exp().mul(noise));
                        NDArray mse = vae.decode(z).sub(x).square().mean();
                        NDArray kl = mean.square().add(logvar.exp()).sub(1f).sub(logvar).mean().mul(0.5f);
                        NDArray total = mse.add(kl.mul((float) o.klWeight()));
                        gc.backward(total);
                        loss = mse.getFloat();
                    }
                    double lr = o.lr() * 0.5 * (1 + Math.cos(Math.PI * (step - 1) / o.steps()));
                    adamStep(w, adam, step, (float) lr);
                }
                first = Double.isNaN(first) ? loss : first;
                recent += loss;
                recentN++;
                if (step % 100 == 0 || step == o.steps()) {
                    log.accept(String.format(Locale.ROOT, "vae step %d: reconstruction mse %.5f (mean of the last %d), %.0f s", step,
                            recent / recentN, recentN, (System.nanoTime() - t0) / 1e9));
                    recent = 0;
                    recentN = 0;
                }
            }
            double[] stats = latentStats(vae, manager, images, s, config, rnd);
            double scaling = 1.0 / stats[0];
            VaeConfig trained = new VaeConfig(config.inChannels(), config.outChannels(), config.latentChannels(),
                    config.blockOutChannels(), config.layersPerBlock(), config.normNumGroups(), s, round(scaling));
            write(out, trained, w);
            double secs = (System.nanoTime() - t0) / 1e9;
            log.accept(String.format(Locale.ROOT, "vae: reconstruction mse %.5f over all %d images (from the latent means), scaling factor"
                    + " %.5f, written to %s in %.0f s", stats[1], images.length, trained.scalingFactor(), out, secs));
            return new Report(first, stats[1], stats[1], trained.scalingFactor(), secs, images.length, params);
        } finally {
            JniUtils.setGradMode(grad);
        }
    }

    private static double round(double v) {
        return Math.round(v * 1e5) / 1e5;
    }

    /** Adam (betas 0.9, 0.999, eps 1e-8, no weight decay) in place, then the gradients zeroed. */
    private static void adamStep(ModelWeights w, Map<String, NDArray[]> state, int step, float lr) {
        float bc1 = (float) (1 - Math.pow(0.9, step));
        float bc2 = (float) (1 - Math.pow(0.999, step));
        for (Map.Entry<String, NDArray[]> e : state.entrySet()) {
            NDArray p = w.get(e.getKey());
            NDArray g = p.getGradient();
            NDArray m = e.getValue()[0];
            NDArray v = e.getValue()[1];
            m.muli(0.9f).addi(g.mul(0.1f));
            v.muli(0.999f).addi(g.square().mul(0.001f));
            p.subi(m.div(bc1).div(v.div(bc2).sqrt().add(1e-8f)).mul(lr));
            g.subi(g);
        }
    }

    private static void mirror(float[] chw, int s, float[] out, int off) {
        for (int c = 0; c < 3; c++) {
            for (int y = 0; y < s; y++) {
                int row = c * s * s + y * s;
                for (int x = 0; x < s; x++) {
                    out[off + row + x] = chw[row + s - 1 - x];
                }
            }
        }
    }

    /** [std of the sampled latents, reconstruction MSE from the means] over every image. */
    private static double[] latentStats(VaeModel vae, NDManager manager, float[][] images, int s, VaeConfig config, SplittableRandom rnd) {
        double sum = 0;
        double sq = 0;
        long n = 0;
        double mse = 0;
        int per = 3 * s * s;
        for (int i = 0; i < images.length; i += 16) {
            int b = Math.min(16, images.length - i);
            float[] batch = new float[b * per];
            for (int j = 0; j < b; j++) {
                System.arraycopy(images[i + j], 0, batch, j * per, per);
            }
            try (NDScope scope = new NDScope()) {
                NDArray x = Tensors.of(manager, batch, new Shape(b, 3, s, s));
                NDList dist = vae.encode(x);
                float[] eps = new float[(int) dist.get(0).getShape().size()];
                for (int k = 0; k < eps.length; k++) {
                    eps[k] = (float) rnd.nextGaussian();
                }
                NDArray z = dist.get(0).add(dist.get(1).mul(0.5f).exp().mul(Tensors.of(manager, eps, dist.get(0).getShape())));
                for (float v : Tensors.read(z)) {
                    sum += v;
                    sq += (double) v * v;
                    n++;
                }
                mse += vae.decode(dist.get(0)).sub(x).square().mean().getFloat() * b;
            }
        }
        double mean = sum / n;
        return new double[] {Math.sqrt(sq / n - mean * mean), mse / images.length};
    }

    /** config.json and diffusion_pytorch_model.safetensors (fp32) of a diffusers AutoencoderKL folder. */
    static void write(Path out, VaeConfig config, ModelWeights w) {
        try {
            Files.createDirectories(out);
            Files.write(out.resolve("config.json"), Json.MAPPER.writerWithDefaultPrettyPrinter().writeValueAsBytes(config.toJson()));
            List<SafetensorsFile.Source> sources = new ArrayList<>();
            for (ParamSpec p : w.manifest()) {
                float[] values = Tensors.read(w.get(p.name()));
                sources.add(new SafetensorsFile.Source() {
                    @Override
                    public String name() {
                        return p.name();
                    }

                    @Override
                    public long[] shape() {
                        return p.shape();
                    }

                    @Override
                    public float[] values() {
                        return values;
                    }
                });
            }
            SafetensorsFile.write(out.resolve(VAE_WEIGHTS), sources, DType.F32, Map.of("format", "pt"));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + out, e);
        }
    }

    /** The weights file of a diffusers VAE folder. */
    public static final String VAE_WEIGHTS = "diffusion_pytorch_model.safetensors";
}
