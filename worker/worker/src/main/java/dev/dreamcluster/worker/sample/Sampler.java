package dev.dreamcluster.worker.sample;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import dev.dreamcluster.diffusion.InferenceSampler;
import dev.dreamcluster.tokenizer.ClipTokenizer;
import dev.dreamcluster.worker.model.Tensors;
import java.awt.image.BufferedImage;
import java.util.SplittableRandom;

/**
 * Text to image as diffusers' StableDiffusionPipeline does it, without a progress bar or safety
 * checker: encode the negative and the positive prompt, start from seeded N(0, 1) latents times the
 * sampler's initial sigma, run the UNet on [negative, positive] at each timestep, guide
 * {@code uncond + cfg * (cond - uncond)}, step, then decode latents / scaling_factor with the VAE and
 * map [-1, 1] to 8-bit RGB ({@code round(clamp(x / 2 + 0.5, 0, 1) * 255)}).
 *
 * The noise comes from {@code SplittableRandom(seed)}, not torch's generator: the same seed gives the
 * same image here on any worker count, not the image diffusers would draw. Runs on the trainer's
 * thread with grad mode off; each step's tensors are freed by an NDScope. Cost: 2 x steps UNet
 * forwards and one VAE decode per image.
 */
public final class Sampler {
    private Sampler() {}

    /** One image of {@code width x height} pixels. */
    public static BufferedImage sample(SamplingModels m, String prompt, String negativePrompt, long seed, int width, int height,
            double cfg, InferenceSampler.Kind kind, int steps) {
        int f = m.latentFactor();
        int lh = height / f;
        int lw = width / f;
        int n = 4 * lh * lw;
        Shape latentShape = new Shape(1, 4, lh, lw);
        InferenceSampler s = InferenceSampler.create(kind, m.schedule(), steps);
        float[] x = new float[n];
        SplittableRandom rnd = new SplittableRandom(seed);
        float sigma0 = s.initNoiseSigma();
        for (int i = 0; i < n; i++) {
            x[i] = (float) rnd.nextGaussian() * sigma0;
        }
        float[] timesteps = s.timesteps();
        try (NDScope outer = new NDScope()) {
            NDArray context = m.textEncoder().forward(tokens(m, negativePrompt, prompt), m.clipSkip());
            float[] guided = new float[n];
            for (int i = 0; i < timesteps.length; i++) {
                try (NDScope step = new NDScope()) {
                    float scale = s.modelInputScale(i);
                    float[] in = new float[n];
                    for (int k = 0; k < n; k++) {
                        in[k] = x[k] * scale;
                    }
                    NDArray one = Tensors.of(m.manager(), in, latentShape);
                    NDArray pair = NDArrays.concat(new NDList(one, one), 0);
                    float[] out = Tensors.read(m.unet().forward(pair, new float[] {timesteps[i], timesteps[i]}, context));
                    for (int k = 0; k < n; k++) {
                        float uncond = out[k];
                        float cond = out[n + k];
                        guided[k] = (float) (uncond + cfg * (cond - uncond));
                    }
                }
                s.step(i, guided, x);
            }
            float inv = (float) (1.0 / m.vaeConfig().scalingFactor());
            for (int k = 0; k < n; k++) {
                x[k] *= inv;
            }
            float[] rgb = Tensors.read(m.vae().decode(Tensors.of(m.manager(), x, latentShape)));
            return toImage(rgb, width, height);
        }
    }

    private static NDArray tokens(SamplingModels m, String negative, String prompt) {
        long[] ids = new long[2 * ClipTokenizer.MAX_LENGTH];
        String[] texts = {negative, prompt};
        for (int i = 0; i < 2; i++) {
            int[] e = m.tokenizer().encode(texts[i]).inputIds();
            for (int j = 0; j < e.length; j++) {
                ids[i * ClipTokenizer.MAX_LENGTH + j] = e[j];
            }
        }
        return Tensors.of(m.manager(), ids, new Shape(2, ClipTokenizer.MAX_LENGTH));
    }

    /** [3, H, W] in about [-1, 1] (channel planes) to an RGB image. */
    static BufferedImage toImage(float[] chw, int width, int height) {
        BufferedImage img = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        int plane = width * height;
        for (int y = 0; y < height; y++) {
            for (int xx = 0; xx < width; xx++) {
                int p = y * width + xx;
                int r = byteOf(chw[p]);
                int g = byteOf(chw[plane + p]);
                int b = byteOf(chw[2 * plane + p]);
                img.setRGB(xx, y, (r << 16) | (g << 8) | b);
            }
        }
        return img;
    }

    static int byteOf(float v) {
        float u = Math.min(1f, Math.max(0f, v / 2f + 0.5f));
        return (int) Math.rint(u * 255f); // numpy round: half to even
    }
}
