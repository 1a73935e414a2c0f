package dev.dreamcluster.optim.kernel;

/**
 * torch.optim.AdamW (amsgrad off), element by element as ATen's scalar CPU kernels read:
 *
 * <pre>
 *   p = p * (1 - lr*wd)                         decoupled decay, BEFORE the moments
 *   m = lerp(m, g, 1 - b1)                      m + w*(g-m) if w < 0.5, else g - (g-m)*(1-w)
 *   v = v*b2 + ((1-b2)*g)*g
 *   p = p + (-lr/bc1 * m) / (sqrt(v)/sqrt(bc2) + eps)
 * </pre>
 *
 * Python scalars are computed in double and cast to float32 where they meet a tensor ({@link Scalars}).
 * Cost per element: 4 loads, 3 stores (28 bytes), one sqrt and one division: memory-bound when vectorised.
 * Without decay (wd = 0) the factor is 1.0f, an exact identity.
 */
public final class AdamWKernel {
    private AdamWKernel() {}

    /** The float32 constants of one step, exactly as torch forms them. */
    public record Scalars(float wdFactor, boolean decay, float lerpWeight, float beta2, float oneMinusBeta2,
            float bc2Sqrt, float negStepSize, float eps) {

        /** Step {@code t} (1-based) at learning rate {@code lr}. */
        public static Scalars of(double lr, double beta1, double beta2, double eps, double weightDecay, long t) {
            double bc1 = 1 - Math.pow(beta1, t);
            double bc2 = 1 - Math.pow(beta2, t);
            return new Scalars((float) (1 - lr * weightDecay), weightDecay != 0, (float) (1 - beta1), (float) beta2,
                    (float) (1 - beta2), (float) Math.sqrt(bc2), (float) (-(lr / bc1)), (float) eps);
        }
    }

    /**
     * One step over {@code n} elements: p[pOff..], g[gOff..], m and v at [sOff..]. One pass (28 bytes
     * per element); the vector form when {@link Simd#ENABLED}.
     */
    public static void step(float[] p, int pOff, float[] g, int gOff, float[] m, float[] v, int sOff, int n, Scalars s) {
        if (Simd.ENABLED) {
            VectorKernels.adamw(p, pOff, g, gOff, m, v, sOff, n, s);
        } else {
            stepScalar(p, pOff, g, gOff, m, v, sOff, n, s);
        }
    }

    /**
     * {@link #step} in scalar code: the same operations per element (decay, lerp, v, update), fused
     * into one loop that C2 auto-vectorises (no selects: ATen's lerp picks its formula by the weight,
     * which is the same for every element, so the choice is made once).
     */
    public static void stepScalar(float[] p, int pOff, float[] g, int gOff, float[] m, float[] v, int sOff, int n,
            Scalars s) {
        final float wdf = s.decay() ? s.wdFactor() : 1.0f;
        final float w = s.lerpWeight();
        final float oneMinusW = 1.0f - w;
        final float b2 = s.beta2();
        final float omb2 = s.oneMinusBeta2();
        final float bc2s = s.bc2Sqrt();
        final float nss = s.negStepSize();
        final float eps = s.eps();
        if (Math.abs(w) < 0.5f) {
            for (int i = 0; i < n; i++) {
                final float gi = g[gOff + i];
                final float mi = m[sOff + i] + w * (gi - m[sOff + i]);
                m[sOff + i] = mi;
                final float vi = v[sOff + i] * b2 + (omb2 * gi) * gi;
                v[sOff + i] = vi;
                p[pOff + i] = p[pOff + i] * wdf + (nss * mi) / ((float) Math.sqrt(vi) / bc2s + eps);
            }
        } else {
            for (int i = 0; i < n; i++) {
                final float gi = g[gOff + i];
                final float mi = gi - (gi - m[sOff + i]) * oneMinusW;
                m[sOff + i] = mi;
                final float vi = v[sOff + i] * b2 + (omb2 * gi) * gi;
                v[sOff + i] = vi;
                p[pOff + i] = p[pOff + i] * wdf + (nss * mi) / ((float) Math.sqrt(vi) / bc2s + eps);
            }
        }
    }
}
