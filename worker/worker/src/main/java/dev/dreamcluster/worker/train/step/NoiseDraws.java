package dev.dreamcluster.worker.train.step;

import dev.dreamcluster.config.TrainFeatures;
import java.util.SplittableRandom;

/**
 * The random draws of one global micro-batch, in a fixed order from one generator: VAE sampling
 * noise, timesteps in [timestep_start, timestep_end), the target noise (pyramid noise when its
 * discount is > 0, then EveryDream2's zero-frequency offset) and, when embedding_perturbation is
 * > 0, the text-embedding perturbation. Drawn for the whole global batch and sliced per rank, so N
 * workers compute what one would; a feature that is off draws nothing, so the sequence of the
 * others is unchanged. Layout: sample-major, [B, 4, h, w] latents and [B, 77, d] embeddings.
 */
record NoiseDraws(float[] vaeNoise, int[] timesteps, float[] noise, float[] perturbation) {

    static NoiseDraws draw(SplittableRandom rnd, int samples, int latentH, int latentW, TrainFeatures f,
            float zeroFrequency, int numTrainTimesteps, int tokens, int hidden) {
        int per = 4 * latentH * latentW;
        float[] vaeNoise = gaussian(rnd, samples, per, 0);
        int start = f.timestepStart();
        int end = Math.min(f.timestepEnd(), numTrainTimesteps);
        int[] t = new int[samples];
        for (int i = 0; i < samples; i++) {
            t[i] = start + rnd.nextInt(end - start);
        }
        float[] noise = gaussian(rnd, samples, per, 0);
        if (f.pyramidNoiseDiscount() > 0) {
            pyramid(rnd, noise, samples * 4, latentH, latentW, f.pyramidNoiseDiscount());
        }
        zeroFrequency(rnd, noise, samples * 4, latentH * latentW, zeroFrequency);
        float[] perturbation = null;
        if (f.embeddingPerturbation() > 0) {
            // EveryDream2 (arXiv 2405.20494): randn_like(states) * gamma / sqrt(hidden size)
            perturbation = gaussian(rnd, samples, tokens * hidden, 0);
            float sd = (float) (f.embeddingPerturbation() / Math.sqrt(hidden));
            for (int i = 0; i < perturbation.length; i++) {
                perturbation[i] *= sd;
            }
        }
        return new NoiseDraws(vaeNoise, t, noise, perturbation);
    }

    /** N(0,1) for {@code samples} x {@code per} values, plus the zero-frequency offset (4 channels). */
    static float[] gaussian(SplittableRandom rnd, int samples, int per, float zeroFrequency) {
        float[] v = new float[samples * per];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) rnd.nextGaussian();
        }
        zeroFrequency(rnd, v, v.length / (per / 4), per / 4, zeroFrequency);
        return v;
    }

    /** EveryDream2's offset noise: one N(0,1) x ratio added to each (sample, channel) plane. */
    static void zeroFrequency(SplittableRandom rnd, float[] v, int planes, int plane, float ratio) {
        if (!(ratio > 0)) {
            return;
        }
        for (int c = 0; c < planes; c++) {
            float off = ratio * (float) rnd.nextGaussian();
            for (int i = 0; i < plane; i++) {
                v[c * plane + i] += off;
            }
        }
    }

    /**
     * EveryDream2's pyramid_noise_like (train.py:262-271) on {@code planes} planes of h x w, in place:
     * for i = 0..9, r = U[2, 4), the size shrinks by r^i (from the previous level's size, as its code
     * does), fresh N(0,1) noise at that size is bilinearly upsampled (PyTorch's align_corners=False)
     * and added with weight discount^i, stopping after a level of width or height 1; then the whole
     * batch is divided by its (unbiased) standard deviation.
     */
    static void pyramid(SplittableRandom rnd, float[] v, int planes, int h, int w, double discount) {
        int lh = h;
        int lw = w;
        for (int i = 0; i < 10; i++) {
            double r = rnd.nextDouble() * 2 + 2;
            lh = Math.max(1, (int) (lh / Math.pow(r, i)));
            lw = Math.max(1, (int) (lw / Math.pow(r, i)));
            float weight = (float) Math.pow(discount, i);
            float[] small = new float[lh * lw];
            for (int p = 0; p < planes; p++) {
                for (int k = 0; k < small.length; k++) {
                    small[k] = (float) rnd.nextGaussian();
                }
                addUpsampled(small, lh, lw, v, p * h * w, h, w, weight);
            }
            if (lh == 1 || lw == 1) {
                break;
            }
        }
        double sum = 0;
        for (float x : v) {
            sum += x;
        }
        double mean = sum / v.length;
        double sq = 0;
        for (float x : v) {
            sq += (x - mean) * (x - mean);
        }
        float std = (float) Math.sqrt(sq / Math.max(1, v.length - 1));
        for (int i = 0; i < v.length; i++) {
            v[i] /= std;
        }
    }

    /** out[off..] += weight x bilinear(src) from (sh, sw) to (h, w), half-pixel centres, edges clamped. */
    static void addUpsampled(float[] src, int sh, int sw, float[] out, int off, int h, int w, float weight) {
        for (int y = 0; y < h; y++) {
            double sy = Math.max(0, (y + 0.5) * sh / h - 0.5);
            int y0 = Math.min((int) sy, sh - 1);
            int y1 = Math.min(y0 + 1, sh - 1);
            double fy = sy - y0;
            for (int x = 0; x < w; x++) {
                double sx = Math.max(0, (x + 0.5) * sw / w - 0.5);
                int x0 = Math.min((int) sx, sw - 1);
                int x1 = Math.min(x0 + 1, sw - 1);
                double fx = sx - x0;
                double top = src[y0 * sw + x0] * (1 - fx) + src[y0 * sw + x1] * fx;
                double bottom = src[y1 * sw + x0] * (1 - fx) + src[y1 * sw + x1] * fx;
                out[off + y * w + x] += weight * (float) (top * (1 - fy) + bottom * fy);
            }
        }
    }
}
