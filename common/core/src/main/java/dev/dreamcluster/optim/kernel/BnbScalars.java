package dev.dreamcluster.optim.kernel;

/**
 * The float32 constants of one bitsandbytes step. bitsandbytes passes lr, betas, eps and wd to its
 * kernels as C floats, so every constant is formed in float32 from float32 inputs ({@code 1.0f -
 * beta1} is 0.100000024 for beta1 = 0.9, where torch would use 0.1f). {@code powf} is modelled as
 * the correctly rounded float result.
 *
 * @param correction2 sqrtf(1 - b2^t)
 * @param stepSize (-lr * correction2) / correction1, negative
 * @param epsTimesCorrection2 correction2 * eps
 * @param wdFactor 1 - lr*wd, applied only when wd > 0
 */
public record BnbScalars(float lr, float beta1, float beta2, float oneMinusBeta1, float oneMinusBeta2,
        float correction1, float correction2, float stepSize, float epsTimesCorrection2, boolean decay,
        float wdFactor) {

    public static BnbScalars of(double lr, double beta1, double beta2, double eps, double weightDecay, long t) {
        final float lrf = (float) lr;
        final float b1 = (float) beta1;
        final float b2 = (float) beta2;
        final float epsf = (float) eps;
        final float wdf = (float) weightDecay;
        final float c1 = 1.0f - powf(b1, t);
        final float c2 = (float) Math.sqrt(1.0f - powf(b2, t));
        final float stepSize = (-lrf * c2) / c1;
        return new BnbScalars(lrf, b1, b2, 1.0f - b1, 1.0f - b2, c1, c2, stepSize, c2 * epsf, wdf > 0,
                1.0f - lrf * wdf);
    }

    private static float powf(float base, long t) {
        return (float) Math.pow(base, (float) t);
    }
}
