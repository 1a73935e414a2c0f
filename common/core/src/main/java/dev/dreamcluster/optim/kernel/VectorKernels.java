package dev.dreamcluster.optim.kernel;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * The vector forms of the kernels' arithmetic ({@code jdk.incubator.vector}): the same float32
 * operations in the same order as the scalar code, one lane per element, so the bits are identical
 * (IEEE add, mul, div and sqrt are lane-wise; selects are blends; maxima skip NaN lane by lane as the
 * scalar {@code a > max ? a : max} does, and a maximum of non-negative non-NaN values does not depend
 * on the order it is taken in). Lanes past the last full vector run the scalar code.
 *
 * <p>Loaded only when {@link Simd#ENABLED}; never touch this class otherwise (it links against the
 * incubator module).
 */
final class VectorKernels {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();
    /** Int lanes (gather indices, table entries) and byte lanes (codes) matching the float lanes. */
    private static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, S.vectorShape());
    private static final VectorSpecies<Byte> B = VectorSpecies.of(byte.class, VectorShape.forBitSize(L * 8));
    /** 64 byte lanes: one vpermb looks 64 codes up in a 64-entry byte table ({@link #dequantize}). */
    private static final VectorSpecies<Byte> B64 = ByteVector.SPECIES_512;
    /**
     * {@link #dequantize}'s interleave: for the 16 floats of quarter q of a 64-code chunk, byte 4i+k
     * of the output is lane 16q+i of plane k, so {@code INTERLEAVE[64q + 4i + k] = 16q + i}.
     */
    private static final byte[] INTERLEAVE = new byte[256];
    /** Byte-lane masks (0 or -1) selecting byte k = 1, 2, 3 of each float: 64 bytes each. */
    private static final byte[] BYTE_OF_FLOAT = new byte[192];

    static {
        for (int q = 0; q < 4; q++) {
            for (int i = 0; i < 16; i++) {
                for (int k = 0; k < 4; k++) {
                    INTERLEAVE[64 * q + 4 * i + k] = (byte) (16 * q + i);
                }
            }
        }
        for (int b = 0; b < 64; b++) {
            for (int k = 1; k < 4; k++) {
                BYTE_OF_FLOAT[64 * (k - 1) + b] = (byte) (b % 4 == k ? -1 : 0);
            }
        }
    }

    private VectorKernels() {}

    static int lanes() {
        return L;
    }

    /** {@link AdamWKernel#step}, fused: decay, lerp, second moment and update in one pass. */
    static void adamw(float[] p, int pOff, float[] g, int gOff, float[] m, float[] v, int sOff, int n, AdamWKernel.Scalars s) {
        final float wdf = s.decay() ? s.wdFactor() : 1.0f;
        final float w = s.lerpWeight();
        final float omw = 1.0f - w;
        final boolean small = Math.abs(w) < 0.5f;
        final float b2 = s.beta2();
        final float omb2 = s.oneMinusBeta2();
        final float bc2s = s.bc2Sqrt();
        final float nss = s.negStepSize();
        final float eps = s.eps();
        final int up = S.loopBound(n);
        int i = 0;
        for (; i < up; i += L) {
            FloatVector gi = FloatVector.fromArray(S, g, gOff + i);
            FloatVector mi = FloatVector.fromArray(S, m, sOff + i);
            FloatVector pi = FloatVector.fromArray(S, p, pOff + i).mul(wdf);
            mi = small ? mi.add(gi.sub(mi).mul(w)) : gi.sub(gi.sub(mi).mul(omw));
            mi.intoArray(m, sOff + i);
            FloatVector vi = FloatVector.fromArray(S, v, sOff + i).mul(b2).add(gi.mul(omb2).mul(gi));
            vi.intoArray(v, sOff + i);
            FloatVector denom = vi.sqrt().div(bc2s).add(eps);
            pi.add(mi.mul(nss).div(denom)).intoArray(p, pOff + i);
        }
        AdamWKernel.stepScalar(p, pOff + i, g, gOff + i, m, v, sOff + i, n - i, s);
    }

    /** {@link LionKernel#step}: p = p*wdf + (-lr)*sign(c), m = m*b2 + (1-b2)*g. */
    static void lion(float[] p, int pOff, float[] g, int gOff, float[] m, int sOff, int n, LionKernel.Scalars s) {
        final float wdf = s.wdFactor();
        final float b1 = s.beta1();
        final float omb1 = s.oneMinusBeta1();
        final float b2 = s.beta2();
        final float omb2 = s.oneMinusBeta2();
        final float negLr = s.negLr();
        final int up = S.loopBound(n);
        int i = 0;
        for (; i < up; i += L) {
            FloatVector gi = FloatVector.fromArray(S, g, gOff + i);
            FloatVector mi = FloatVector.fromArray(S, m, sOff + i);
            FloatVector c = mi.mul(b1).add(gi.mul(omb1));
            FloatVector.fromArray(S, p, pOff + i).mul(wdf).add(sign(c).mul(negLr)).intoArray(p, pOff + i);
            mi.mul(b2).add(gi.mul(omb2)).intoArray(m, sOff + i);
        }
        LionKernel.stepScalar(p, pOff + i, g, gOff + i, m, sOff + i, n - i, s);
    }

    /** ATen's float sign, (0 < x) - (x < 0): +1, -1, or +0 for zeros and NaN. */
    private static FloatVector sign(FloatVector c) {
        return FloatVector.zero(S).blend(1f, c.compare(VectorOperators.GT, 0f)).blend(-1f, c.compare(VectorOperators.LT, 0f));
    }

    /*
     * Block maxima: the kernels carry max(|x|) lane-wise in a vector across the loop (Java's Math.max,
     * so a NaN lane stays NaN) and reduce it once per block, written out in each kernel as
     * "NaN if a lane is NaN, else the larger of the lanes' maximum and the scalar tail's" (the caller
     * then takes the NaN-skipping maximum with absMaxSkipNaN). Lanes hold non-negative values, so the
     * order the maximum is taken in does not matter. Written out, not a helper: a vector passed to a
     * method C2 does not inline is boxed, and the loop-carried vector with it (5.7 ns per element
     * instead of 0.68, measured). Until 2026-12-07 the maxima went through a scratch array every
     * iteration instead; the loop-carried vector made the update pass 1.7x faster (1.17 -> 0.68 ns per
     * element, both in one JVM, this machine).
     */

    /** The scalar kernels' maximum: {@code a > max ? a : max} over |a[0..n)|, so NaN never wins. */
    private static float absMaxSkipNaN(float[] a, int n) {
        float r = 0f;
        for (int j = 0; j < n; j++) {
            final float x = Math.abs(a[j]);
            r = x > r ? x : r;
        }
        return r;
    }

    /**
     * AdamW8bit's per-block update of the valid lanes ({@link Blockwise8bitKernel#adam}): dequantize
     * (gathers from the maps), new m and v into s1/s2 (zero where g is not finite), p updated (then
     * decayed where g is finite). Returns the two new absmax values (NaN-skipping maxima of |m| and |v|
     * over the valid lanes), packed as float bits: max1 in the high word. {@code idx} is scratch of at
     * least {@link #lanes()} entries (the gathers take their indices from an array).
     */
    static long adam8Block(float[] p, int pBase, float[] g, int gBase, byte[] c1, byte[] c2, int cBase, float[] s1,
            float[] s2, int[] idx, int valid, float am1, float am2, BnbScalars s) {
        final float[] q1 = QuantMap.SIGNED;
        final float[] q2 = QuantMap.UNSIGNED;
        final float b1 = s.beta1();
        final float b2 = s.beta2();
        final float omb1 = s.oneMinusBeta1();
        final float omb2 = s.oneMinusBeta2();
        final float stepSize = s.stepSize();
        final float epsC2 = s.epsTimesCorrection2();
        final float wdf = s.decay() ? s.wdFactor() : 1.0f;
        final FloatVector one = FloatVector.broadcast(S, 1.0f);
        final FloatVector zero = FloatVector.zero(S);
        FloatVector max1 = FloatVector.zero(S);
        FloatVector max2 = FloatVector.zero(S);
        final int up = S.loopBound(valid);
        int j = 0;
        for (; j < up; j += L) {
            FloatVector gj = FloatVector.fromArray(S, g, gBase + j);
            VectorMask<Float> finite = gj.abs().compare(VectorOperators.LE, Float.MAX_VALUE);
            FloatVector v = dequantize(q2, c2, cBase + j, idx).mul(am2);
            v = v.mul(b2).add(gj.mul(omb2).mul(gj));
            FloatVector m = dequantize(q1, c1, cBase + j, idx).mul(am1);
            m = m.mul(b1).add(gj.mul(omb1));
            m = zero.blend(m, finite);
            v = zero.blend(v, finite);
            m.intoArray(s1, j);
            v.intoArray(s2, j);
            max1 = max1.max(m.abs());
            max2 = max2.max(v.abs());
            FloatVector decay = one.blend(wdf, finite);
            FloatVector pj = FloatVector.fromArray(S, p, pBase + j);
            pj.add(m.div(v.sqrt().add(epsC2)).mul(stepSize)).mul(decay).intoArray(p, pBase + j);
        }
        float m1 = 0f;
        float m2 = 0f;
        for (; j < valid; j++) {
            final float gj = g[gBase + j];
            final boolean fin = Math.abs(gj) <= Float.MAX_VALUE;
            float v = q2[c2[cBase + j] & 0xFF] * am2;
            v = (v * b2) + ((omb2 * gj) * gj);
            float m = q1[c1[cBase + j] & 0xFF] * am1;
            m = (m * b1) + (omb1 * gj);
            m = fin ? m : 0f;
            v = fin ? v : 0f;
            s1[j] = m;
            s2[j] = v;
            final float a1 = Math.abs(m);
            final float a2 = Math.abs(v);
            m1 = a1 > m1 ? a1 : m1;
            m2 = a2 > m2 ? a2 : m2;
            p[pBase + j] = (p[pBase + j] + (stepSize * (m / ((float) Math.sqrt(v) + epsC2)))) * (fin ? wdf : 1.0f);
        }
        // the block maxima (see the note above absMaxSkipNaN)
        m1 = max1.compare(VectorOperators.NE, max1).anyTrue() ? Float.NaN : Math.max(max1.reduceLanes(VectorOperators.MAX), m1);
        m2 = max2.compare(VectorOperators.NE, max2).anyTrue() ? Float.NaN : Math.max(max2.reduceLanes(VectorOperators.MAX), m2);
        if (m1 != m1) {
            m1 = absMaxSkipNaN(s1, valid); // 0 * Inf lanes after an infinite absmax
        }
        if (m2 != m2) {
            m2 = absMaxSkipNaN(s2, valid);
        }
        return ((long) Float.floatToRawIntBits(m1) << 32) | (Float.floatToRawIntBits(m2) & 0xFFFFFFFFL);
    }

    /**
     * Lion8bit's per-block update of the valid lanes ({@link Blockwise8bitKernel#lion}): dequantize,
     * p decayed (wd > 0) and stepped by -lr*sign(c), new m into s1. Returns the NaN-skipping maximum of
     * |m| over the valid lanes.
     */
    static float lion8Block(float[] p, int pBase, float[] g, int gBase, byte[] c1, int cBase, float[] s1,
            int[] idx, int valid, float am1, BnbScalars s) {
        final float[] q1 = QuantMap.SIGNED;
        final float b1 = s.beta1();
        final float b2 = s.beta2();
        final float omb1 = s.oneMinusBeta1();
        final float omb2 = s.oneMinusBeta2();
        final float lr = s.lr();
        final boolean decay = s.decay();
        final float wdf = s.wdFactor();
        FloatVector max1 = FloatVector.zero(S);
        final int up = S.loopBound(valid);
        int j = 0;
        for (; j < up; j += L) {
            FloatVector gj = FloatVector.fromArray(S, g, gBase + j);
            FloatVector m = dequantize(q1, c1, cBase + j, idx).mul(am1);
            FloatVector pj = FloatVector.fromArray(S, p, pBase + j);
            if (decay) {
                pj = pj.mul(wdf);
            }
            pj.sub(sign(m.mul(b1).add(gj.mul(omb1))).mul(lr)).intoArray(p, pBase + j);
            m = m.mul(b2).add(gj.mul(omb2));
            m.intoArray(s1, j);
            max1 = max1.max(m.abs());
        }
        float m1 = 0f;
        for (; j < valid; j++) {
            final float gj = g[gBase + j];
            float m = q1[c1[cBase + j] & 0xFF] * am1;
            float pi = p[pBase + j];
            if (decay) {
                pi = pi * wdf;
            }
            p[pBase + j] = pi - lr * LionKernel.sign((m * b1) + (omb1 * gj));
            m = (m * b2) + (omb2 * gj);
            s1[j] = m;
            final float a1 = Math.abs(m);
            m1 = a1 > m1 ? a1 : m1;
        }
        // the block maximum (see the note above absMaxSkipNaN)
        m1 = max1.compare(VectorOperators.NE, max1).anyTrue() ? Float.NaN : Math.max(max1.reduceLanes(VectorOperators.MAX), m1);
        return m1 == m1 ? m1 : absMaxSkipNaN(s1, valid); // NaN m (no guard in Lion8bit)
    }

    /**
     * {@link #adam8Block} with the block's map values already in s1 (signed map, m) and s2 (unsigned,
     * v), as {@link #dequantize} leaves them: the same operations in the same order, the new m and v
     * written over them. A method of its own so that neither form's compiled loop carries the other's
     * code (C2 17 inlines a vector method only within a node budget; past it, vectors are boxed).
     */
    static long adam8BlockValues(float[] p, int pBase, float[] g, int gBase, float[] s1, float[] s2,
            int valid, float am1, float am2, BnbScalars s) {
        final float b1 = s.beta1();
        final float b2 = s.beta2();
        final float omb1 = s.oneMinusBeta1();
        final float omb2 = s.oneMinusBeta2();
        final float stepSize = s.stepSize();
        final float epsC2 = s.epsTimesCorrection2();
        final float wdf = s.decay() ? s.wdFactor() : 1.0f;
        final FloatVector one = FloatVector.broadcast(S, 1.0f);
        final FloatVector zero = FloatVector.zero(S);
        FloatVector max1 = FloatVector.zero(S);
        FloatVector max2 = FloatVector.zero(S);
        final int up = S.loopBound(valid);
        int j = 0;
        for (; j < up; j += L) {
            FloatVector gj = FloatVector.fromArray(S, g, gBase + j);
            VectorMask<Float> finite = gj.abs().compare(VectorOperators.LE, Float.MAX_VALUE);
            FloatVector v = FloatVector.fromArray(S, s2, j).mul(am2);
            v = v.mul(b2).add(gj.mul(omb2).mul(gj));
            FloatVector m = FloatVector.fromArray(S, s1, j).mul(am1);
            m = m.mul(b1).add(gj.mul(omb1));
            m = zero.blend(m, finite);
            v = zero.blend(v, finite);
            m.intoArray(s1, j);
            v.intoArray(s2, j);
            max1 = max1.max(m.abs());
            max2 = max2.max(v.abs());
            FloatVector decay = one.blend(wdf, finite);
            FloatVector pj = FloatVector.fromArray(S, p, pBase + j);
            pj.add(m.div(v.sqrt().add(epsC2)).mul(stepSize)).mul(decay).intoArray(p, pBase + j);
        }
        float m1 = 0f;
        float m2 = 0f;
        for (; j < valid; j++) {
            final float gj = g[gBase + j];
            final boolean fin = Math.abs(gj) <= Float.MAX_VALUE;
            float v = s2[j] * am2;
            v = (v * b2) + ((omb2 * gj) * gj);
            float m = s1[j] * am1;
            m = (m * b1) + (omb1 * gj);
            m = fin ? m : 0f;
            v = fin ? v : 0f;
            s1[j] = m;
            s2[j] = v;
            final float a1 = Math.abs(m);
            final float a2 = Math.abs(v);
            m1 = a1 > m1 ? a1 : m1;
            m2 = a2 > m2 ? a2 : m2;
            p[pBase + j] = (p[pBase + j] + (stepSize * (m / ((float) Math.sqrt(v) + epsC2)))) * (fin ? wdf : 1.0f);
        }
        // the block maxima (see the note above absMaxSkipNaN)
        m1 = max1.compare(VectorOperators.NE, max1).anyTrue() ? Float.NaN : Math.max(max1.reduceLanes(VectorOperators.MAX), m1);
        m2 = max2.compare(VectorOperators.NE, max2).anyTrue() ? Float.NaN : Math.max(max2.reduceLanes(VectorOperators.MAX), m2);
        if (m1 != m1) {
            m1 = absMaxSkipNaN(s1, valid); // 0 * Inf lanes after an infinite absmax
        }
        if (m2 != m2) {
            m2 = absMaxSkipNaN(s2, valid);
        }
        return ((long) Float.floatToRawIntBits(m1) << 32) | (Float.floatToRawIntBits(m2) & 0xFFFFFFFFL);
    }

    /**
     * {@link #lion8Block} with the block's map values already in s1, as {@link #dequantize} leaves them;
     * the new m is written over them.
     */
    static float lion8BlockValues(float[] p, int pBase, float[] g, int gBase, float[] s1, int valid,
            float am1, BnbScalars s) {
        final float b1 = s.beta1();
        final float b2 = s.beta2();
        final float omb1 = s.oneMinusBeta1();
        final float omb2 = s.oneMinusBeta2();
        final float lr = s.lr();
        final boolean decay = s.decay();
        final float wdf = s.wdFactor();
        FloatVector max1 = FloatVector.zero(S);
        final int up = S.loopBound(valid);
        int j = 0;
        for (; j < up; j += L) {
            FloatVector gj = FloatVector.fromArray(S, g, gBase + j);
            FloatVector m = FloatVector.fromArray(S, s1, j).mul(am1);
            FloatVector pj = FloatVector.fromArray(S, p, pBase + j);
            if (decay) {
                pj = pj.mul(wdf);
            }
            pj.sub(sign(m.mul(b1).add(gj.mul(omb1))).mul(lr)).intoArray(p, pBase + j);
            m = m.mul(b2).add(gj.mul(omb2));
            m.intoArray(s1, j);
            max1 = max1.max(m.abs());
        }
        float m1 = 0f;
        for (; j < valid; j++) {
            final float gj = g[gBase + j];
            float m = s1[j] * am1;
            float pi = p[pBase + j];
            if (decay) {
                pi = pi * wdf;
            }
            p[pBase + j] = pi - lr * LionKernel.sign((m * b1) + (omb1 * gj));
            m = (m * b2) + (omb2 * gj);
            s1[j] = m;
            final float a1 = Math.abs(m);
            m1 = a1 > m1 ? a1 : m1;
        }
        // the block maximum (see the note above absMaxSkipNaN)
        m1 = max1.compare(VectorOperators.NE, max1).anyTrue() ? Float.NaN : Math.max(max1.reduceLanes(VectorOperators.MAX), m1);
        return m1 == m1 ? m1 : absMaxSkipNaN(s1, valid); // NaN m (no guard in Lion8bit)
    }

    /**
     * {@code dst[j] = map[c[cOff + j] & 0xFF]} for j < n, the 256-entry map held in registers instead of
     * gathered (needs {@link Simd#BYTE_PERMUTE}: 16 float lanes, AVX512_VBMI). Bit-exact by
     * construction: the float's four bytes are looked up separately and put back together.
     *
     * <p>Per 64 codes, all in byte lanes: plane k of the map ({@code planes[256k ..]}, byte k of every
     * value) is four 64-entry tables; one vpermb each looks up the codes' low 6 bits, and two bitwise
     * blends on code bit 6 and one on bit 7 pick the table, so 16 vpermb + 12 blends give byte k of all
     * 64 values. Then each quarter of 16 floats takes its lanes from the four planes with 4 more vpermb
     * (constant shuffle {@link #INTERLEAVE}) and 3 blends (constant masks {@link #BYTE_OF_FLOAT}), and
     * is read as 16 floats. About 60 simple ops per 64 codes against four 16-lane gathers, which cost
     * ~24 cycles each on Zen 5 (measured 2.2x faster per code; 2026-12-06). Codes past the last full
     * 64 run the scalar lookup.
     *
     * <p>Java 17 notes: the loop body stays in this one method (a vector passed to or returned from a
     * method C2 did not inline is boxed), and the only reinterpretation is bytes to floats (adding int
     * reinterpretations made C2 17 compile the block with boxed vectors in some runs).
     */
    static void dequantize(byte[] c, int cOff, float[] dst, int n, byte[] planes, float[] map) {
        final ByteVector k1 = ByteVector.fromArray(B64, BYTE_OF_FLOAT, 0);
        final ByteVector k2 = ByteVector.fromArray(B64, BYTE_OF_FLOAT, 64);
        final ByteVector k3 = ByteVector.fromArray(B64, BYTE_OF_FLOAT, 128);
        final ByteVector zero = ByteVector.zero(B64);
        final int up = n & ~63;
        int j = 0;
        for (; j < up; j += 64) {
            final ByteVector x = ByteVector.fromArray(B64, c, cOff + j);
            final VectorShuffle<Byte> lo6 = x.and((byte) 63).toShuffle();
            final ByteVector bit7 = zero.blend((byte) -1, x.compare(VectorOperators.LT, (byte) 0));
            final ByteVector bit6 = zero.blend((byte) -1, x.add(x).compare(VectorOperators.LT, (byte) 0));
            ByteVector t0 = ByteVector.fromArray(B64, planes, 0).rearrange(lo6);
            ByteVector t1 = ByteVector.fromArray(B64, planes, 64).rearrange(lo6);
            ByteVector t2 = ByteVector.fromArray(B64, planes, 128).rearrange(lo6);
            ByteVector t3 = ByteVector.fromArray(B64, planes, 192).rearrange(lo6);
            final ByteVector y0 = t0.lanewise(VectorOperators.BITWISE_BLEND, t1, bit6)
                    .lanewise(VectorOperators.BITWISE_BLEND, t2.lanewise(VectorOperators.BITWISE_BLEND, t3, bit6), bit7);
            t0 = ByteVector.fromArray(B64, planes, 256).rearrange(lo6);
            t1 = ByteVector.fromArray(B64, planes, 320).rearrange(lo6);
            t2 = ByteVector.fromArray(B64, planes, 384).rearrange(lo6);
            t3 = ByteVector.fromArray(B64, planes, 448).rearrange(lo6);
            final ByteVector y1 = t0.lanewise(VectorOperators.BITWISE_BLEND, t1, bit6)
                    .lanewise(VectorOperators.BITWISE_BLEND, t2.lanewise(VectorOperators.BITWISE_BLEND, t3, bit6), bit7);
            t0 = ByteVector.fromArray(B64, planes, 512).rearrange(lo6);
            t1 = ByteVector.fromArray(B64, planes, 576).rearrange(lo6);
            t2 = ByteVector.fromArray(B64, planes, 640).rearrange(lo6);
            t3 = ByteVector.fromArray(B64, planes, 704).rearrange(lo6);
            final ByteVector y2 = t0.lanewise(VectorOperators.BITWISE_BLEND, t1, bit6)
                    .lanewise(VectorOperators.BITWISE_BLEND, t2.lanewise(VectorOperators.BITWISE_BLEND, t3, bit6), bit7);
            t0 = ByteVector.fromArray(B64, planes, 768).rearrange(lo6);
            t1 = ByteVector.fromArray(B64, planes, 832).rearrange(lo6);
            t2 = ByteVector.fromArray(B64, planes, 896).rearrange(lo6);
            t3 = ByteVector.fromArray(B64, planes, 960).rearrange(lo6);
            final ByteVector y3 = t0.lanewise(VectorOperators.BITWISE_BLEND, t1, bit6)
                    .lanewise(VectorOperators.BITWISE_BLEND, t2.lanewise(VectorOperators.BITWISE_BLEND, t3, bit6), bit7);
            for (int q = 0; q < 4; q++) {
                final VectorShuffle<Byte> iq = ByteVector.fromArray(B64, INTERLEAVE, 64 * q).toShuffle();
                y0.rearrange(iq).lanewise(VectorOperators.BITWISE_BLEND, y1.rearrange(iq), k1)
                        .lanewise(VectorOperators.BITWISE_BLEND, y2.rearrange(iq), k2)
                        .lanewise(VectorOperators.BITWISE_BLEND, y3.rearrange(iq), k3)
                        .reinterpretAsFloats().intoArray(dst, j + 16 * q);
            }
        }
        for (; j < n; j++) {
            dst[j] = map[c[cOff + j] & 0xFF];
        }
    }

    /** {@code map[code & 0xFF]} for the lanes' codes at {@code c[off..]}: a gather. */
    private static FloatVector dequantize(float[] map, byte[] c, int off, int[] idx) {
        ((IntVector) ByteVector.fromArray(B, c, off).convertShape(VectorOperators.B2I, I, 0)).and(0xFF).intoArray(idx, 0);
        return FloatVector.fromArray(S, map, 0, idx, 0);
    }

    /**
     * Re-quantization of a block: {@code c[cBase + j] = code(state[j] / absmax)} for j < valid, by the
     * 32-bit search table ({@link QuantMap#lookupInt}, gathered per lane). The signed table includes the
     * sign fix, and a NaN ratio (a NaN state) gives 255 / 0 as the scalar quantizers do; the caller
     * handles absmax 0 or Inf (0/0 and Inf/Inf ratios need the value's sign).
     */
    static void quantize(float[] state, float absmax, byte[] c, int cBase, int[] idx, int valid, boolean signed) {
        final int[] lut = signed ? QuantMap.SIGNED_LUT_INT : QuantMap.UNSIGNED_LUT_INT;
        final int up = S.loopBound(valid);
        int j = 0;
        for (; j < up; j += L) {
            IntVector bits = FloatVector.fromArray(S, state, j).div(absmax).reinterpretAsInts();
            bits.lanewise(VectorOperators.LSHR, 16).intoArray(idx, 0);
            IntVector e = IntVector.fromArray(I, lut, 0, idx, 0);
            // the key's floats in increasing value order: low bits, reversed for negative floats
            IntVector order = bits.and(0xFFFF).lanewise(VectorOperators.XOR, bits.lanewise(VectorOperators.ASHR, 31).and(0xFFFF));
            VectorMask<Integer> upper = order.compare(VectorOperators.GE, e.lanewise(VectorOperators.LSHR, 16));
            e.blend(e.lanewise(VectorOperators.LSHR, 8), upper).and(0xFF)
                    .convertShape(VectorOperators.I2B, B, 0).reinterpretAsBytes().intoArray(c, cBase + j);
        }
        for (; j < valid; j++) {
            c[cBase + j] = (byte) QuantMap.lookupInt(signed, state[j] / absmax);
        }
    }

    /**
     * Timing only ({@link KernelProfile}): the quantizer's table step alone, one gather per element
     * from {@code lut} at {@code keys[off..off+n)} ({@code n} a multiple of {@link #lanes()}), with
     * nothing else the quantizer does (no division, no compare, no narrowing, no store). Returns the
     * entries' sum so that the loads stay live.
     */
    static int gatherSum(int[] lut, int[] keys, int off, int n) {
        IntVector sum = IntVector.zero(I);
        for (int j = 0; j < n; j += L) {
            sum = sum.add(IntVector.fromArray(I, lut, 0, keys, off + j));
        }
        return sum.reduceLanes(VectorOperators.ADD);
    }

    /** {@code out[j] = a[j] / d} for j < n (IEEE division, lane-wise). */
    static void divide(float[] a, float d, float[] out, int n) {
        final int up = S.loopBound(n);
        int j = 0;
        for (; j < up; j += L) {
            FloatVector.fromArray(S, a, j).div(d).intoArray(out, j);
        }
        for (; j < n; j++) {
            out[j] = a[j] / d;
        }
    }
}
