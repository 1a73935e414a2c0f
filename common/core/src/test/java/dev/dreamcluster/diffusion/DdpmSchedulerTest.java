package dev.dreamcluster.diffusion;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** Stable Diffusion's schedule against values diffusers prints for DDPMScheduler(scaled_linear). */
class DdpmSchedulerTest {
    @Test
    void shouldMatchDiffusersAlphasCumprod() {
        DdpmScheduler s = DdpmScheduler.stableDiffusion(DdpmScheduler.Prediction.EPSILON);
        // alphas_cumprod[0] = 1 - 0.00085; [999] = 0.00466010 (the product of (1 - beta_t) in double)
        assertEquals(Math.sqrt(1 - 0.00085), s.sqrtAlphaCumprod(0), 1e-7);
        assertEquals(0.00466010, s.sqrtAlphaCumprod(999) * s.sqrtAlphaCumprod(999), 2e-8);
        assertEquals(1.0, s.sqrtAlphaCumprod(500) * s.sqrtAlphaCumprod(500)
                + s.sqrtOneMinusAlphaCumprod(500) * s.sqrtOneMinusAlphaCumprod(500), 1e-6);
    }

    @Test
    void shouldBuildVTargetsAndNoisySamples() {
        DdpmScheduler v = DdpmScheduler.stableDiffusion(DdpmScheduler.Prediction.V_PREDICTION);
        float[] x0 = {1f, -2f};
        float[] noise = {0.5f, 0.25f};
        float[] out = new float[2];
        v.target(x0, noise, 10, out);
        assertEquals(v.sqrtAlphaCumprod(10) * 0.5f - v.sqrtOneMinusAlphaCumprod(10) * 1f, out[0], 0f);
        v.addNoise(x0, noise, 10, out);
        assertEquals(v.sqrtAlphaCumprod(10) * -2f + v.sqrtOneMinusAlphaCumprod(10) * 0.25f, out[1], 0f);
        DdpmScheduler e = DdpmScheduler.fromJson(v.toJson().put("prediction_type", "epsilon"));
        e.target(x0, noise, 10, out);
        assertEquals(0.25f, out[1]);
    }
}
