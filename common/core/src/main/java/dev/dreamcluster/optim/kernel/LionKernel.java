package dev.dreamcluster.optim.kernel;

/**
 * Lion as lion-pytorch's {@code update_fn} computes it:
 *
 * <pre>
 *   p = p * (1 - lr*wd)
 *   c = m*b1 + (1-b1)*g
 *   p = p + (-lr) * sign(c)                    sign(x) = (0 < x) - (x < 0): +-0 and NaN give +0
 *   m = m*b2 + (1-b2)*g                        momentum updated after the step
 * </pre>
 *
 * Paper: Chen et al., "Symbolic Discovery of Optimization Algorithms" (arXiv:2302.06675). Defaults
 * lr 1e-4, betas (0.9, 0.99), wd 0. Cost: 3 loads, 2 stores per element, no division.
 */
public final class LionKernel {
    private LionKernel() {}

    /** The float32 constants of one step; Python doubles cast to float32. */
    public record Scalars(float wdFactor, float beta1, float oneMinusBeta1, float beta2, float oneMinusBeta2,
            float negLr) {

        public static Scalars of(double lr, double beta1, double beta2, double weightDecay) {
            return new Scalars((float) (1 - lr * weightDecay), (float) beta1, (float) (1 - beta1), (float) beta2,
                    (float) (1 - beta2), (float) -lr);
        }
    }

    /**
     * ATen's sign for floats, {@code (0 < x) - (x < 0)}: +-0 give +0 (Math.signum would keep -0 and
     * flip the sign of a zero update). Written with selects so the loop vectorises.
     */
    public static float sign(float x) {
        return (0f < x ? 1f : 0f) - (x < 0f ? 1f : 0f);
    }

    /** One step over {@code n} elements; the vector form when {@link Simd#ENABLED}. */
    public static void step(float[] p, int pOff, float[] g, int gOff, float[] m, int sOff, int n, Scalars s) {
        if (Simd.ENABLED) {
            VectorKernels.lion(p, pOff, g, gOff, m, sOff, n, s);
        } else {
            stepScalar(p, pOff, g, gOff, m, sOff, n, s);
        }
    }

    /** {@link #step} in scalar code (the selects of the sign keep it scalar: ~20x slower). */
    public static void stepScalar(float[] p, int pOff, float[] g, int gOff, float[] m, int sOff, int n, Scalars s) {
        final float wdf = s.wdFactor();
        final float b1 = s.beta1();
        final float omb1 = s.oneMinusBeta1();
        final float b2 = s.beta2();
        final float omb2 = s.oneMinusBeta2();
        final float negLr = s.negLr();
        for (int i = 0; i < n; i++) {
            final float gi = g[gOff + i];
            final float mi = m[sOff + i];
            final float c = mi * b1 + omb1 * gi;
            p[pOff + i] = p[pOff + i] * wdf + negLr * sign(c);
            m[sOff + i] = mi * b2 + omb2 * gi;
        }
    }
}
