package dev.dreamcluster.optim.kernel;

/**
 * bitsandbytes' blockwise 8-bit optimizer kernels ({@code kOptimizerStatic8bit2StateBlockwise} for
 * Adam, {@code kOptimizerStatic8bit1StateBlockwise} for Lion), one 256-element block at a time.
 *
 * <p>Layout: a tensor slice of {@code n} elements starts at a block boundary of its tensor. Element
 * {@code i} of the slice is {@code p[pOff+i]}, {@code g[gOff+i]}, codes {@code c1[cOff+i]}; block
 * {@code b} (elements 256b..256b+255) has its scale in {@code absmax[aOff+b]}. Lanes past {@code n}
 * in the last block are padding: g = 0, m code 128, v code 0; they take part in the absmax maximum
 * but are never stored.
 *
 * <p>Scratch: {@code s1}, {@code s2} hold the block's new fp32 states between the absmax reduction
 * and re-quantization (256 floats each, owned by the calling thread). Blocks are independent, so any
 * split of blocks across threads gives identical bits.
 */
public final class Blockwise8bitKernel {
    private static final int B = QuantMap.BLOCK;

    private Blockwise8bitKernel() {}

    /**
     * AdamW8bit on blocks [blockFrom, blockTo): dequantize with last step's absmax, update m and v in
     * fp32, new absmax = max |state| over the block, update p from the fp32 states (then decay), and
     * re-quantize with the new absmax. A non-finite gradient resets the element's m and v to 0 and
     * leaves p untouched (no decay either).
     */
    public static void adam(float[] p, int pOff, float[] g, int gOff, byte[] c1, byte[] c2, int cOff,
            float[] absmax1, float[] absmax2, int aOff, int n, int blockFrom, int blockTo, BnbScalars s,
            float[] s1, float[] s2) {
        final float[] q1 = QuantMap.SIGNED;
        final float[] q2 = QuantMap.UNSIGNED;
        final float b1 = s.beta1();
        final float b2 = s.beta2();
        final float omb1 = s.oneMinusBeta1();
        final float omb2 = s.oneMinusBeta2();
        final float stepSize = s.stepSize();
        final float epsC2 = s.epsTimesCorrection2();
        final boolean decay = s.decay();
        final float wdf = s.wdFactor();
        for (int b = blockFrom; b < blockTo; b++) {
            final int base = b * B;
            final int valid = Math.min(B, n - base);
            final float am1 = absmax1[aOff + b];
            final float am2 = absmax2[aOff + b];
            float max1 = 0f;
            float max2 = 0f;
            for (int j = 0; j < B; j++) {
                final float gj;
                final int k1;
                final int k2;
                if (j < valid) {
                    gj = g[gOff + base + j];
                    k1 = c1[cOff + base + j] & 0xFF;
                    k2 = c2[cOff + base + j] & 0xFF;
                } else {
                    gj = 0f;
                    k1 = QuantMap.SIGNED_PAD_CODE;
                    k2 = 0;
                }
                float m = 0f;
                float v = 0f;
                if (Float.isFinite(gj)) {
                    v = q2[k2] * am2;
                    v = (v * b2) + ((omb2 * gj) * gj);
                    m = q1[k1] * am1;
                    m = (m * b1) + (omb1 * gj);
                }
                s1[j] = m;
                s2[j] = v;
                final float a1 = Math.abs(m);
                final float a2 = Math.abs(v);
                max1 = a1 > max1 ? a1 : max1;
                max2 = a2 > max2 ? a2 : max2;
            }
            absmax1[aOff + b] = max1;
            absmax2[aOff + b] = max2;
            for (int j = 0; j < valid; j++) {
                final int i = base + j;
                final float m = s1[j];
                final float v = s2[j];
                if (Float.isFinite(g[gOff + i])) {
                    float pi = p[pOff + i] + (stepSize * (m / ((float) Math.sqrt(v) + epsC2)));
                    if (decay) {
                        pi = pi * wdf;
                    }
                    p[pOff + i] = pi;
                }
                c1[cOff + i] = (byte) QuantMap.quantizeSigned(q1, m, max1);
                c2[cOff + i] = (byte) QuantMap.quantize(q2, v / max2, false);
            }
        }
    }

    /**
     * Lion8bit on blocks [blockFrom, blockTo): decay first (wd > 0), c = m*b1 + (1-b1)*g, p -= lr*sgn(c),
     * m = m*b2 + (1-b2)*g, new absmax, re-quantize. bitsandbytes has no non-finite guard here.
     */
    public static void lion(float[] p, int pOff, float[] g, int gOff, byte[] c1, int cOff, float[] absmax1,
            int aOff, int n, int blockFrom, int blockTo, BnbScalars s, float[] s1) {
        final float[] q1 = QuantMap.SIGNED;
        final float b1 = s.beta1();
        final float b2 = s.beta2();
        final float omb1 = s.oneMinusBeta1();
        final float omb2 = s.oneMinusBeta2();
        final float lr = s.lr();
        final boolean decay = s.decay();
        final float wdf = s.wdFactor();
        for (int b = blockFrom; b < blockTo; b++) {
            final int base = b * B;
            final int valid = Math.min(B, n - base);
            final float am1 = absmax1[aOff + b];
            float max1 = 0f;
            for (int j = 0; j < B; j++) {
                final boolean real = j < valid;
                final float gj = real ? g[gOff + base + j] : 0f;
                final int k1 = real ? c1[cOff + base + j] & 0xFF : QuantMap.SIGNED_PAD_CODE;
                float m = q1[k1] * am1;
                if (real) {
                    float pi = p[pOff + base + j];
                    if (decay) {
                        pi = pi * wdf;
                    }
                    p[pOff + base + j] = pi - lr * sgn((m * b1) + (omb1 * gj));
                }
                m = (m * b2) + (omb2 * gj);
                s1[j] = m;
                final float a1 = Math.abs(m);
                max1 = a1 > max1 ? a1 : max1;
            }
            absmax1[aOff + b] = max1;
            for (int j = 0; j < valid; j++) {
                c1[cOff + base + j] = (byte) QuantMap.quantizeSigned(q1, s1[j], max1);
            }
        }
    }

    /** CUDA's {@code sgn}: (0 < x) - (x < 0), so NaN and zeros give 0. */
    static float sgn(float x) {
        return (0f < x ? 1f : 0f) - (x < 0f ? 1f : 0f);
    }
}
