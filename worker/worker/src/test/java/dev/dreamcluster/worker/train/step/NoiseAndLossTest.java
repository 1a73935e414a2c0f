package dev.dreamcluster.worker.train.step;

import dev.dreamcluster.config.TrainFeatures;
import dev.dreamcluster.config.LossType;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.dreamcluster.diffusion.DdpmScheduler;
import dev.dreamcluster.worker.model.Tensors;
import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The step's draws (timestep range, pyramid noise, embedding perturbation) and EveryDream2's loss
 * types and min-SNR weights, each against a plain transcription of its definition.
 */
class NoiseAndLossTest {
    static TrainFeatures features(LossType loss, Double gamma, double pyramid, double perturb, int t0, int t1) {
        return new TrainFeatures(loss, gamma, pyramid, perturb, t0, t1, 0, false, 0, null, null, null, 500, 0);
    }

    @Test
    void withEveryFeatureOffTheDrawsAreDreamClustersEarlierSequence() {
        NoiseDraws d = NoiseDraws.draw(new SplittableRandom(42), 3, 4, 6, TrainFeatures.DEFAULTS, 0.02f, 1000, 77, 32);
        // the sequence the step drew before these features: VAE noise, timesteps, noise with offset
        SplittableRandom r = new SplittableRandom(42);
        float[] vae = new float[3 * 96];
        for (int i = 0; i < vae.length; i++) {
            vae[i] = (float) r.nextGaussian();
        }
        int[] t = new int[3];
        for (int i = 0; i < 3; i++) {
            t[i] = r.nextInt(1000);
        }
        float[] noise = new float[3 * 96];
        for (int i = 0; i < noise.length; i++) {
            noise[i] = (float) r.nextGaussian();
        }
        for (int c = 0; c < 12; c++) {
            float off = 0.02f * (float) r.nextGaussian();
            for (int i = 0; i < 24; i++) {
                noise[c * 24 + i] += off;
            }
        }
        assertArrayEquals(vae, d.vaeNoise());
        assertArrayEquals(t, d.timesteps());
        assertArrayEquals(noise, d.noise());
        assertNull(d.perturbation());
    }

    @Test
    void timestepsStayInTheirRange() {
        NoiseDraws d = NoiseDraws.draw(new SplittableRandom(1), 500, 1, 1, features(LossType.MSE, null, 0, 0, 200, 300), 0,
                1000, 1, 1);
        int min = Arrays.stream(d.timesteps()).min().orElseThrow();
        int max = Arrays.stream(d.timesteps()).max().orElseThrow();
        assertTrue(min >= 200 && max < 300 && max - min > 90, min + ".." + max);
    }

    @Test
    void bilinearUpsampleMatchesPyTorch() {
        // torch.nn.Upsample(size=(4, 4), mode='bilinear')(tensor([[[[1., 2.], [3., 4.]]]]))
        float[] out = new float[16];
        NoiseDraws.addUpsampled(new float[] {1, 2, 3, 4}, 2, 2, out, 0, 4, 4, 1f);
        assertArrayEquals(new float[] {1f, 1.25f, 1.75f, 2f, 1.5f, 1.75f, 2.25f, 2.5f, 2.5f, 2.75f, 3.25f, 3.5f, 3f, 3.25f,
            3.75f, 4f}, out, 1e-6f);
    }

    @Test
    void pyramidNoiseHasUnitStdAndLowFrequencyContent() {
        TrainFeatures on = features(LossType.MSE, null, 0.8, 0, 0, 1000);
        NoiseDraws p = NoiseDraws.draw(new SplittableRandom(5), 4, 32, 32, on, 0, 1000, 1, 1);
        NoiseDraws plain = NoiseDraws.draw(new SplittableRandom(5), 4, 32, 32, features(LossType.MSE, null, 0, 0, 0, 1000), 0,
                1000, 1, 1);
        assertFalse(Arrays.equals(p.noise(), plain.noise()));
        double mean = 0;
        for (float v : p.noise()) {
            mean += v;
        }
        mean /= p.noise().length;
        double var = 0;
        for (float v : p.noise()) {
            var += (v - mean) * (v - mean);
        }
        assertEquals(1.0, Math.sqrt(var / (p.noise().length - 1)), 1e-4);
        // neighbouring values correlate (upsampled coarse levels); in white noise they do not
        assertTrue(neighbourCorrelation(p.noise(), 32) > 0.1, "pyramid " + neighbourCorrelation(p.noise(), 32));
        assertTrue(Math.abs(neighbourCorrelation(plain.noise(), 32)) < 0.05);
    }

    static double neighbourCorrelation(float[] v, int w) {
        double s = 0;
        int n = 0;
        for (int i = 0; i + 1 < v.length; i++) {
            if ((i + 1) % w != 0) {
                s += v[i] * v[i + 1];
                n++;
            }
        }
        return s / n;
    }

    @Test
    void embeddingPerturbationHasStdGammaOverSqrtD() {
        NoiseDraws d = NoiseDraws.draw(new SplittableRandom(9), 2, 1, 1, features(LossType.MSE, null, 0, 0.5, 0, 1000), 0,
                1000, 77, 64);
        double sq = 0;
        for (float v : d.perturbation()) {
            sq += v * v;
        }
        assertEquals(2 * 77 * 64, d.perturbation().length);
        assertEquals(0.5 / 8, Math.sqrt(sq / d.perturbation().length), 0.003);
    }

    /** The loss by EveryDream2's formulas in plain Java: per-sample weights, mse/huber means, timestep bias. */
    static double reference(float[] pred, float[] target, int[] t, DdpmScheduler s, TrainFeatures f) {
        int b = t.length;
        int per = pred.length / b;
        double mse = 0;
        double hub = 0;
        double mseB = 0;
        double hubB = 0;
        double mseR = 0;
        double hubR = 0;
        for (int i = 0; i < b; i++) {
            double w = 1;
            if (f.minSnrGamma() != null) {
                double a = s.sqrtAlphaCumprod(t[i]);
                double sg = s.sqrtOneMinusAlphaCumprod(t[i]);
                double snr = (a / sg) * (a / sg);
                w = Math.min(snr, f.minSnrGamma()) / snr;
            }
            double bias = t[i] / 1000.0;
            for (int j = 0; j < per; j++) {
                double d = pred[i * per + j] - target[i * per + j];
                double h = Math.abs(d) < 1 ? 0.5 * d * d : Math.abs(d) - 0.5;
                mse += d * d * w;
                hub += h * w;
                mseB += d * d * w * bias;
                hubB += h * w * bias;
                mseR += d * d * w * (1 - bias);
                hubR += h * w * (1 - bias);
            }
        }
        int n = pred.length;
        return switch (f.lossType()) {
            case MSE -> mse / n;
            case HUBER -> hub / n;
            case MSE_HUBER -> mseB / n + hubR / n;
            case HUBER_MSE -> hubB / n + mseR / n;
        };
    }

    @Test
    void lossTypesAndMinSnrMatchEveryDream2sDefinitions() {
        Engine.getEngine("PyTorch");
        DdpmScheduler s = DdpmScheduler.stableDiffusion(DdpmScheduler.Prediction.EPSILON);
        SplittableRandom r = new SplittableRandom(3);
        float[] pred = new float[3 * 8];
        float[] target = new float[3 * 8];
        for (int i = 0; i < pred.length; i++) {
            pred[i] = (float) (r.nextGaussian() * 1.5);
            target[i] = (float) r.nextGaussian();
        }
        int[] t = {5, 480, 990};
        try (NDManager m = NDManager.newBaseManager()) {
            NDArray p = Tensors.of(m, pred, new Shape(3, 2, 2, 2));
            NDArray q = Tensors.of(m, target, new Shape(3, 2, 2, 2));
            double[] seen = new double[8];
            int k = 0;
            for (Double gamma : new Double[] {null, 5.0}) {
                for (LossType type : LossType.values()) {
                    TrainFeatures f = features(type, gamma, 0, 0, 0, 1000);
                    double got = DiffusionLoss.loss(p, q, t, s, f).getFloat();
                    assertEquals(reference(pred, target, t, s, f), got, 1e-5 * Math.abs(got), type + " gamma " + gamma);
                    seen[k++] = got;
                }
            }
            assertEquals(8, Arrays.stream(seen).distinct().count(), "every loss type and gamma gives another value");
        }
    }
}
