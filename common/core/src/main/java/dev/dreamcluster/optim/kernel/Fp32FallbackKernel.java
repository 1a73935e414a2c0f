package dev.dreamcluster.optim.kernel;

/**
 * bitsandbytes' 32-bit kernels, which its 8-bit optimizers use for tensors under 4096 elements
 * ({@code kOptimizer32bit2State} ADAM and {@code kOptimizer32bit1State} LION). Same float32
 * constants as the 8-bit path ({@link BnbScalars}); no non-finite guard.
 */
public final class Fp32FallbackKernel {
    private Fp32FallbackKernel() {}

    /**
     * <pre>
     *   m = m*b1 + (1-b1)*g ;  v = v*b2 + (1-b2)*(g*g)      note (g*g) grouped, unlike the 8-bit kernel
     *   p = p + stepSize * (m / (sqrt(v) + eps*correction2)) ;  p = p*(1 - lr*wd) if wd > 0
     * </pre>
     */
    public static void adam(float[] p, int pOff, float[] g, int gOff, float[] m, float[] v, int sOff, int n,
            BnbScalars s) {
        final float b1 = s.beta1();
        final float b2 = s.beta2();
        final float omb1 = s.oneMinusBeta1();
        final float omb2 = s.oneMinusBeta2();
        final float stepSize = s.stepSize();
        final float epsC2 = s.epsTimesCorrection2();
        final boolean decay = s.decay();
        final float wdf = s.wdFactor();
        for (int i = 0; i < n; i++) {
            final float gi = g[gOff + i];
            final float mi = m[sOff + i] * b1 + (omb1 * gi);
            final float vi = v[sOff + i] * b2 + (omb2 * (gi * gi));
            m[sOff + i] = mi;
            v[sOff + i] = vi;
            float pi = p[pOff + i] + stepSize * (mi / ((float) Math.sqrt(vi) + epsC2));
            if (decay) {
                pi = pi * wdf;
            }
            p[pOff + i] = pi;
        }
    }

    /**
     * bitsandbytes >= 0.50 (decoupled decay): p = p*(1 - lr*wd) if wd > 0; p = p - lr*sgn(m*b1 + (1-b1)*g);
     * m = m*b2 + (1-b2)*g.
     */
    public static void lion(float[] p, int pOff, float[] g, int gOff, float[] m, int sOff, int n, BnbScalars s) {
        final float b1 = s.beta1();
        final float b2 = s.beta2();
        final float omb1 = s.oneMinusBeta1();
        final float omb2 = s.oneMinusBeta2();
        final float lr = s.lr();
        final boolean decay = s.decay();
        final float wdf = s.wdFactor();
        for (int i = 0; i < n; i++) {
            final float gi = g[gOff + i];
            final float mi = m[sOff + i];
            float pi = p[pOff + i];
            if (decay) {
                pi = pi * wdf;
            }
            p[pOff + i] = pi - lr * LionKernel.sign(mi * b1 + omb1 * gi);
            m[sOff + i] = mi * b2 + omb2 * gi;
        }
    }
}
