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
 * <p>Scratch: {@code s1}, {@code s2}, {@code s3} hold the block's new fp32 states and ratios between
 * the absmax reduction and re-quantization (256 floats each, owned by the calling thread). Blocks are independent, so any
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
     *
     * <p>Passes per 256-block, all while the block is in L1: (1) the code-table loads (scalar: they are
     * gathers); (2) moments, finite mask, absmax and the parameter update, one fused vector pass;
     * (3) the two divisions by the new absmax (vector); (4) table quantization (scalar lookups). The
     * scalar form does (1)+(2) in one loop, then the update. Scratch: s1 = m, s2 = v then v/absmax2, s3 = per-lane decay
     * factor then m/absmax1. A reset lane has m = v = 0, so its update is stepSize*(0/eps') = -0 and
     * p + -0 = p exactly; its decay factor is 1. Hence pass 2 needs no branch.
     */
    public static void adam(float[] p, int pOff, float[] g, int gOff, byte[] c1, byte[] c2, int cOff,
            float[] absmax1, float[] absmax2, int aOff, int n, int blockFrom, int blockTo, BnbScalars s,
            float[] s1, float[] s2, float[] s3, int[] idx) {
        adam(p, pOff, g, gOff, c1, c2, cOff, absmax1, absmax2, aOff, n, blockFrom, blockTo, s, s1, s2, s3, idx, Simd.ENABLED);
    }

    /** {@link #adam} with the vector form ({@code vector}, needs {@link Simd#ENABLED}) or the scalar one. */
    public static void adam(float[] p, int pOff, float[] g, int gOff, byte[] c1, byte[] c2, int cOff,
            float[] absmax1, float[] absmax2, int aOff, int n, int blockFrom, int blockTo, BnbScalars s,
            float[] s1, float[] s2, float[] s3, int[] idx, boolean vector) {
        adam(p, pOff, g, gOff, c1, c2, cOff, absmax1, absmax2, aOff, n, blockFrom, blockTo, s, s1, s2, s3, idx, vector,
                Simd.BYTE_PERMUTE);
    }

    /** {@link #adam}; the vector form looks the maps up in registers ({@code planes}) or gathers from them. */
    static void adam(float[] p, int pOff, float[] g, int gOff, byte[] c1, byte[] c2, int cOff,
            float[] absmax1, float[] absmax2, int aOff, int n, int blockFrom, int blockTo, BnbScalars s,
            float[] s1, float[] s2, float[] s3, int[] idx, boolean vector, boolean planes) {
        final float[] q1 = QuantMap.SIGNED;
        final float[] q2 = QuantMap.UNSIGNED;
        final float b1 = s.beta1();
        final float b2 = s.beta2();
        final float omb1 = s.oneMinusBeta1();
        final float omb2 = s.oneMinusBeta2();
        final float stepSize = s.stepSize();
        final float epsC2 = s.epsTimesCorrection2();
        final float wdf = s.decay() ? s.wdFactor() : 1.0f;
        if (!(epsC2 > 0)) {
            throw new IllegalArgumentException("eps * correction2 underflowed to " + epsC2 + ": use a larger eps");
        }
        for (int b = blockFrom; b < blockTo; b++) {
            final int base = b * B;
            final int valid = Math.min(B, n - base);
            final float am1 = absmax1[aOff + b];
            final float am2 = absmax2[aOff + b];
            float max1;
            float max2;
            final int pBase = pOff + base;
            if (vector) {
                final long maxima;
                if (planes) {
                    // the maps held in registers: s1 = SIGNED[c1], s2 = UNSIGNED[c2], then the update from s1, s2
                    VectorKernels.dequantize(c1, cOff + base, s1, valid, QuantMap.SIGNED_PLANES, q1);
                    VectorKernels.dequantize(c2, cOff + base, s2, valid, QuantMap.UNSIGNED_PLANES, q2);
                    maxima = VectorKernels.adam8BlockValues(p, pBase, g, gOff + base, s1, s2, valid, am1, am2, s);
                } else {
                    maxima = VectorKernels.adam8Block(p, pBase, g, gOff + base, c1, c2, cOff + base, s1, s2, idx, valid, am1,
                            am2, s);
                }
                max1 = Float.intBitsToFloat((int) (maxima >>> 32));
                max2 = Float.intBitsToFloat((int) maxima);
            } else {
                max1 = 0f;
                max2 = 0f;
                if (Float.isFinite(am1) && Float.isFinite(am2)) {
                    // Common case: with finite scales no lane can produce NaN (non-finite g lanes are
                    // zeroed by the selects), so Math.max, which C2 compiles branch-free, gives the same
                    // maximum as the NaN-skipping compare below. ~1.5x faster than branching per lane.
                    for (int j = 0; j < valid; j++) {
                        final int i = base + j;
                        final float gj = g[gOff + i];
                        final boolean finite = Math.abs(gj) <= Float.MAX_VALUE;
                        float v = q2[c2[cOff + i] & 0xFF] * am2;
                        v = (v * b2) + ((omb2 * gj) * gj);
                        float m = q1[c1[cOff + i] & 0xFF] * am1;
                        m = (m * b1) + (omb1 * gj);
                        m = finite ? m : 0f;
                        v = finite ? v : 0f;
                        s1[j] = m;
                        s2[j] = v;
                        s3[j] = finite ? wdf : 1.0f;
                        max1 = Math.max(Math.abs(m), max1);
                        max2 = Math.max(Math.abs(v), max2);
                    }
                } else {
                    // A scale overflowed to Inf on an earlier step (|g| > ~6e20 squares to Inf): 0 * Inf
                    // lanes are NaN, and the maximum skips them, lane by lane.
                    for (int j = 0; j < valid; j++) {
                        final int i = base + j;
                        final float gj = g[gOff + i];
                        float m = 0f;
                        float v = 0f;
                        float decay = 1.0f;
                        if (Float.isFinite(gj)) {
                            v = q2[c2[cOff + i] & 0xFF] * am2;
                            v = (v * b2) + ((omb2 * gj) * gj);
                            m = q1[c1[cOff + i] & 0xFF] * am1;
                            m = (m * b1) + (omb1 * gj);
                            decay = wdf;
                        }
                        s1[j] = m;
                        s2[j] = v;
                        s3[j] = decay;
                        final float a1 = Math.abs(m);
                        final float a2 = Math.abs(v);
                        max1 = a1 > max1 ? a1 : max1;
                        max2 = a2 > max2 ? a2 : max2;
                    }
                }
                // bnb applies decay only when wd > 0; a factor of exactly 1.0f is the identity
                for (int j = 0; j < valid; j++) {
                    p[pBase + j] = (p[pBase + j] + (stepSize * (s1[j] / ((float) Math.sqrt(s2[j]) + epsC2)))) * s3[j];
                }
            }
            if (valid < B) {
                // padding lanes (g = 0, codes 128 / 0) are all equal: one evaluation stands for them all
                float v = q2[0] * am2;
                v = (v * b2) + ((omb2 * 0f) * 0f);
                float m = q1[QuantMap.SIGNED_PAD_CODE] * am1;
                m = (m * b1) + (omb1 * 0f);
                final float a1 = Math.abs(m);
                final float a2 = Math.abs(v);
                max1 = a1 > max1 ? a1 : max1;
                max2 = a2 > max2 ? a2 : max2;
            }
            absmax1[aOff + b] = max1;
            absmax2[aOff + b] = max2;
            final int cBase = cOff + base;
            if (vector && max1 > 0 && max1 <= Float.MAX_VALUE && max2 > 0 && max2 <= Float.MAX_VALUE) {
                VectorKernels.quantize(s1, max1, c1, cBase, idx, valid, true);
                VectorKernels.quantize(s2, max2, c2, cBase, idx, valid, false);
                continue;
            }
            // three short loops vectorise where one combined loop does not (measured 1.4x)
            for (int j = 0; j < valid; j++) {
                s3[j] = s1[j] / max1;
            }
            for (int j = 0; j < valid; j++) {
                s2[j] = s2[j] / max2;
            }
            // With a finite, non-zero absmax no ratio is NaN (|state| <= absmax), so the table step
            // alone is exact; a zero or infinite absmax takes the NaN-aware path.
            if (max1 > 0 && max1 <= Float.MAX_VALUE) {
                for (int j = 0; j < valid; j++) {
                    c1[cBase + j] = (byte) QuantMap.lookup(true, s3[j]);
                }
            } else {
                for (int j = 0; j < valid; j++) {
                    c1[cBase + j] = (byte) QuantMap.quantizeSignedRatio(s1[j], s3[j]);
                }
            }
            if (max2 > 0 && max2 <= Float.MAX_VALUE) {
                for (int j = 0; j < valid; j++) {
                    c2[cBase + j] = (byte) QuantMap.lookup(false, s2[j]);
                }
            } else {
                for (int j = 0; j < valid; j++) {
                    c2[cBase + j] = (byte) QuantMap.quantizeUnsigned(s2[j]);
                }
            }
        }
    }

    /**
     * Lion8bit on blocks [blockFrom, blockTo): decay first (wd > 0), c = m*b1 + (1-b1)*g, p -= lr*sgn(c),
     * m = m*b2 + (1-b2)*g, new absmax, re-quantize. bitsandbytes has no non-finite guard here.
     */
    public static void lion(float[] p, int pOff, float[] g, int gOff, byte[] c1, int cOff, float[] absmax1,
            int aOff, int n, int blockFrom, int blockTo, BnbScalars s, float[] s1, float[] s2, int[] idx) {
        lion(p, pOff, g, gOff, c1, cOff, absmax1, aOff, n, blockFrom, blockTo, s, s1, s2, idx, Simd.ENABLED);
    }

    /** {@link #lion} with the vector form ({@code vector}, needs {@link Simd#ENABLED}) or the scalar one. */
    public static void lion(float[] p, int pOff, float[] g, int gOff, byte[] c1, int cOff, float[] absmax1,
            int aOff, int n, int blockFrom, int blockTo, BnbScalars s, float[] s1, float[] s2, int[] idx, boolean vector) {
        lion(p, pOff, g, gOff, c1, cOff, absmax1, aOff, n, blockFrom, blockTo, s, s1, s2, idx, vector, Simd.BYTE_PERMUTE);
    }

    /** {@link #lion}; the vector form looks the map up in registers ({@code planes}) or gathers from it. */
    static void lion(float[] p, int pOff, float[] g, int gOff, byte[] c1, int cOff, float[] absmax1,
            int aOff, int n, int blockFrom, int blockTo, BnbScalars s, float[] s1, float[] s2, int[] idx, boolean vector,
            boolean planes) {
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
            final int cBase = cOff + base;
            float max1;
            if (vector) {
                if (planes) {
                    VectorKernels.dequantize(c1, cBase, s1, valid, QuantMap.SIGNED_PLANES, q1); // s1 = SIGNED[c1]
                    max1 = VectorKernels.lion8BlockValues(p, pOff + base, g, gOff + base, s1, valid, am1, s);
                } else {
                    max1 = VectorKernels.lion8Block(p, pOff + base, g, gOff + base, c1, cBase, s1, idx, valid, am1, s);
                }
            } else {
                max1 = 0f;
                for (int j = 0; j < valid; j++) {
                    final int i = base + j;
                    final float gj = g[gOff + i];
                    float m = q1[c1[cOff + i] & 0xFF] * am1;
                    float pi = p[pOff + i];
                    if (decay) {
                        pi = pi * wdf;
                    }
                    p[pOff + i] = pi - lr * LionKernel.sign((m * b1) + (omb1 * gj));
                    m = (m * b2) + (omb2 * gj);
                    s1[j] = m;
                    final float a1 = Math.abs(m);
                    max1 = a1 > max1 ? a1 : max1;
                }
            }
            if (valid < B) {
                // padding lanes (g = 0, code 128) are all equal
                float m = q1[QuantMap.SIGNED_PAD_CODE] * am1;
                m = (m * b2) + (omb2 * 0f);
                final float a1 = Math.abs(m);
                max1 = a1 > max1 ? a1 : max1;
            }
            absmax1[aOff + b] = max1;
            if (vector && max1 > 0 && max1 <= Float.MAX_VALUE) {
                // a NaN m (no guard in Lion8bit) has a NaN ratio here, which the table maps to 255
                VectorKernels.quantize(s1, max1, c1, cBase, idx, valid, true);
                continue;
            }
            for (int j = 0; j < valid; j++) {
                s2[j] = s1[j] / max1;
            }
            // no non-finite guard: m (and the ratio) may be NaN in any block
            for (int j = 0; j < valid; j++) {
                c1[cBase + j] = (byte) QuantMap.quantizeSignedRatio(s1[j], s2[j]);
            }
        }
    }

}
