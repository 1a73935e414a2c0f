package dev.dreamcluster.diffusion;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;

class InferenceSamplerTest {
    static final DdpmScheduler EPS = DdpmScheduler.stableDiffusion(DdpmScheduler.Prediction.EPSILON);
    static final DdpmScheduler V = DdpmScheduler.stableDiffusion(DdpmScheduler.Prediction.V_PREDICTION);

    @Test
    void ddimTimestepsAreLeadingWithOffsetOne() {
        // diffusers DDIMScheduler(steps_offset=1).set_timesteps(50): [981, 961, ..., 21, 1]
        float[] t = InferenceSampler.create(InferenceSampler.Kind.DDIM, EPS, 50).timesteps();
        assertEquals(50, t.length);
        assertEquals(981f, t[0]);
        assertEquals(961f, t[1]);
        assertEquals(1f, t[49]);
        assertArrayEquals(new float[] {667, 334, 1}, InferenceSampler.create(InferenceSampler.Kind.DDIM, EPS, 3).timesteps());
    }

    @Test
    void eulerSigmasMatchStableDiffusionsKnownRange() {
        EulerSampler e = (EulerSampler) InferenceSampler.create(InferenceSampler.Kind.EULER, EPS, 30);
        float[] t = e.timesteps();
        assertEquals(999f, t[0]);
        assertEquals(0f, t[29]);
        assertEquals(999f * 28 / 29, t[1], 1e-3);
        // the SD schedule's sigma range, as k-diffusion and diffusers print it: 14.6146 .. 0.0292
        assertEquals(14.6146, e.sigma(0), 1e-3);
        assertEquals(0.0292, e.sigma(29), 1e-4);
        assertEquals(0f, e.sigma(30));
        assertEquals(14.6146, e.initNoiseSigma(), 1e-3);
        assertEquals(1 / Math.sqrt(14.6146 * 14.6146 + 1), e.modelInputScale(0), 1e-5);
    }

    /**
     * With a model that knows x0 (it returns the exact noise or v of the current sample), both samplers
     * must land on x0: checks every formula of the step, for both prediction types.
     */
    @ParameterizedTest
    @CsvSource({"DDIM, EPSILON, 10", "DDIM, V_PREDICTION, 10", "EULER, EPSILON, 20", "EULER, V_PREDICTION, 20",
            "DDIM, EPSILON, 1"})
    void anOracleModelIsDenoisedToItsTarget(InferenceSampler.Kind kind, DdpmScheduler.Prediction pred, int steps) {
        DdpmScheduler sched = pred == DdpmScheduler.Prediction.EPSILON ? EPS : V;
        InferenceSampler s = InferenceSampler.create(kind, sched, steps);
        SplittableRandom r = new SplittableRandom(3);
        int n = 64;
        float[] x0 = new float[n];
        float[] x = new float[n];
        float[] noise = new float[n];
        for (int k = 0; k < n; k++) {
            x0[k] = (float) r.nextDouble(-1, 1);
            noise[k] = (float) r.nextGaussian();
            x[k] = noise[k] * s.initNoiseSigma();
        }
        if (kind == InferenceSampler.Kind.DDIM) {
            // DDIM starts at t_0 < T: put x on that marginal, as the noise would be for a perfect model
            float a = sched.alphaCumprod((int) s.timesteps()[0]);
            for (int k = 0; k < n; k++) {
                x[k] = (float) (Math.sqrt(a) * x0[k] + Math.sqrt(1 - a) * x[k]);
            }
        }
        float[] out = new float[n];
        for (int i = 0; i < steps; i++) {
            float scale = s.modelInputScale(i);
            float t = s.timesteps()[i];
            double a = kind == InferenceSampler.Kind.DDIM ? sched.alphaCumprod((int) t) : scale * scale; // abar = 1/(sigma^2+1)
            for (int k = 0; k < n; k++) {
                double xin = x[k] * scale; // = sqrt(a) x0 + sqrt(1-a) eps
                double eps = (xin - Math.sqrt(a) * x0[k]) / Math.sqrt(1 - a);
                out[k] = (float) (pred == DdpmScheduler.Prediction.EPSILON ? eps : Math.sqrt(a) * eps - Math.sqrt(1 - a) * x0[k]);
            }
            s.step(i, out, x);
        }
        // DDIM ends on abar_0's marginal (set_alpha_to_one false), its noise unchanged; Euler ends at sigma 0
        double a0 = kind == InferenceSampler.Kind.DDIM ? sched.alphaCumprod(0) : 1;
        for (int k = 0; k < n; k++) {
            assertEquals(Math.sqrt(a0) * x0[k] + Math.sqrt(1 - a0) * noise[k], x[k], 2e-3, "element " + k);
        }
    }
}
