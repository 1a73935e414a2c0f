package dev.dreamcluster.diffusion;

/**
 * diffusers' DDIMScheduler with eta 0 (deterministic), clip_sample false, set_alpha_to_one false and
 * steps_offset 1 (Stable Diffusion's scheduler config), timestep_spacing "leading":
 * t_i = round(i * (T / n)) + 1 descending; x_{t'} = sqrt(abar_{t'}) x0 + sqrt(1 - abar_{t'}) eps,
 * with t' = t - T / n and abar at t' < 0 being abar_0.
 */
final class DdimSampler implements InferenceSampler {
    private final DdpmScheduler s;
    private final int ratio;
    private final float[] timesteps;

    DdimSampler(DdpmScheduler s, int steps) {
        this.s = s;
        this.ratio = s.numTrainTimesteps() / steps;
        this.timesteps = new float[steps];
        for (int i = 0; i < steps; i++) {
            timesteps[i] = (float) (steps - 1 - i) * ratio + 1;
        }
    }

    @Override
    public float[] timesteps() {
        return timesteps.clone();
    }

    @Override
    public float initNoiseSigma() {
        return 1f;
    }

    @Override
    public float modelInputScale(int i) {
        return 1f;
    }

    @Override
    public void step(int i, float[] out, float[] x) {
        int t = (int) timesteps[i];
        int prev = t - ratio;
        float at = s.alphaCumprod(t);
        float ap = prev >= 0 ? s.alphaCumprod(prev) : s.alphaCumprod(0);
        float bt = 1f - at;
        float sa = (float) Math.sqrt(at);
        float sb = (float) Math.sqrt(bt);
        float sap = (float) Math.sqrt(ap);
        float dir = (float) Math.sqrt(1f - ap);
        boolean eps = s.prediction() == DdpmScheduler.Prediction.EPSILON;
        for (int k = 0; k < x.length; k++) {
            float x0;
            float e;
            if (eps) {
                x0 = (x[k] - sb * out[k]) / sa;
                e = out[k];
            } else { // v: x0 = sqrt(a) x - sqrt(b) v, eps = sqrt(a) v + sqrt(b) x
                x0 = sa * x[k] - sb * out[k];
                e = sa * out[k] + sb * x[k];
            }
            x[k] = sap * x0 + dir * e;
        }
    }
}
