package dev.dreamcluster.diffusion;

/**
 * diffusers' EulerDiscreteScheduler without churn, timestep_spacing "linspace", linear sigma
 * interpolation, final sigma 0: t_i = linspace(0, T - 1, n) descending (fractional),
 * sigma(t) = interp of sqrt((1 - abar) / abar) (float32 table), input scaled by 1/sqrt(sigma^2 + 1),
 * x += (x - x0) / sigma * (sigma_next - sigma); initial noise sigma = max sigma.
 */
final class EulerSampler implements InferenceSampler {
    private final DdpmScheduler s;
    private final float[] timesteps;
    private final float[] sigmas;

    EulerSampler(DdpmScheduler s, int steps) {
        this.s = s;
        int n = s.numTrainTimesteps();
        float[] table = new float[n];
        for (int t = 0; t < n; t++) {
            float a = s.alphaCumprod(t);
            table[t] = (float) Math.sqrt((1f - a) / a);
        }
        timesteps = new float[steps];
        sigmas = new float[steps + 1];
        for (int i = 0; i < steps; i++) {
            // np.linspace(0, T-1, n, dtype=float32)[::-1]: index * ((T-1)/(n-1)), the last one exactly T-1
            int j = steps - 1 - i;
            double t = steps == 1 ? 0 : j == steps - 1 ? n - 1 : j * ((double) (n - 1) / (steps - 1));
            timesteps[i] = (float) t;
            double tt = timesteps[i];
            int lo = (int) Math.floor(tt);
            int hi = Math.min(lo + 1, n - 1);
            double f = tt - lo;
            sigmas[i] = (float) (table[lo] + f * ((double) table[hi] - table[lo]));
        }
        sigmas[steps] = 0f;
    }

    @Override
    public float[] timesteps() {
        return timesteps.clone();
    }

    float sigma(int i) {
        return sigmas[i];
    }

    @Override
    public float initNoiseSigma() {
        float max = 0;
        for (float v : sigmas) {
            max = Math.max(max, v);
        }
        return max;
    }

    @Override
    public float modelInputScale(int i) {
        return (float) (1.0 / Math.sqrt(sigmas[i] * sigmas[i] + 1f));
    }

    @Override
    public void step(int i, float[] out, float[] x) {
        float sigma = sigmas[i];
        float dt = sigmas[i + 1] - sigma;
        float c = (float) Math.sqrt(sigma * sigma + 1f);
        boolean eps = s.prediction() == DdpmScheduler.Prediction.EPSILON;
        for (int k = 0; k < x.length; k++) {
            float x0 = eps ? x[k] - sigma * out[k] : out[k] * (-sigma / c) + x[k] / (sigma * sigma + 1f);
            float derivative = (x[k] - x0) / sigma;
            x[k] = x[k] + derivative * dt;
        }
    }
}
