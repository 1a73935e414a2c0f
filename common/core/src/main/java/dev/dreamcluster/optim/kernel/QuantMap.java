package dev.dreamcluster.optim.kernel;

/**
 * bitsandbytes' dynamic 8-bit quantization maps and its nearest-code search.
 *
 * <p>{@code create_dynamic_map}: for i in 0..6, the midpoints of {@code linspace(0.1, 1, k)} scaled by
 * 10^(i-6) (k = 2^i+1 signed, 2^(i+1)+1 unsigned), mirrored for the signed map, plus 0 and 1, sorted:
 * 256 float32 values. torch's CPU linspace is evaluated with fused multiply-add on x86 builds, so the
 * map is computed here with {@link Math#fma}; the test compares it bit for bit with a torch dump.
 */
public final class QuantMap {
    /** Scales 10^(i-6), i = 0..6, as Python computes them before the cast to float32. */
    private static final double[] DECADES = {1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1};

    /** Elements per quantization block (bitsandbytes >= 0.44). */
    public static final int BLOCK = 256;
    /** Signed map (first moment, m): 127 negatives, 0.0 at index 127, 127 positives, 1.0 at 255. */
    public static final float[] SIGNED = create(true);
    /** Unsigned map (second moment, v): 0.0 at index 0 up to 1.0 at 255. */
    public static final float[] UNSIGNED = create(false);
    /** Search tables for the optimizer's quantizers: one entry per 2^16 floats sharing their top 16 bits. */
    private static final Lut SIGNED_LUT = new Lut(SIGNED, true);
    private static final Lut UNSIGNED_LUT = new Lut(UNSIGNED, false);
    /** The same tables as ints, for vector gathers: see {@link #packInt}. */
    static final int[] SIGNED_LUT_INT = packInt(SIGNED_LUT, true);
    static final int[] UNSIGNED_LUT_INT = packInt(UNSIGNED_LUT, false);
    /** Padding lanes of a partial last block read the signed code 128 (the smallest positive value). */
    public static final int SIGNED_PAD_CODE = 128;
    /**
     * The maps as four byte planes, for the vector dequantizer's in-register lookups
     * ({@link VectorKernels#dequantize}): {@code PLANES[256k + c]} is byte k (little-endian) of the
     * float bits of {@code map[c]}, so the 64 bytes at {@code 256k + 64h} are one 64-entry table (one
     * vpermb) covering codes 64h..64h+63. 1 KiB per map.
     */
    static final byte[] SIGNED_PLANES = planes(SIGNED);
    static final byte[] UNSIGNED_PLANES = planes(UNSIGNED);

    private QuantMap() {}

    static float[] create(boolean signed) {
        float[] out = new float[256];
        int n = 0;
        for (int i = 0; i <= 6; i++) {
            int k = signed ? (1 << i) + 1 : (1 << (i + 1)) + 1;
            float[] b = linspace(0.1f, 1.0f, k);
            float scale = (float) DECADES[i];
            for (int j = 0; j + 1 < k; j++) {
                float mean = (b[j] + b[j + 1]) / 2.0f;
                out[n++] = scale * mean;
                if (signed) {
                    out[n++] = -scale * mean;
                }
            }
        }
        out[n++] = 0f;
        out[n++] = 1.0f;
        if (n != 256) {
            throw new IllegalStateException("map has " + n + " entries");
        }
        java.util.Arrays.sort(out);
        return out;
    }

    static byte[] planes(float[] map) {
        byte[] out = new byte[4 * 256];
        for (int c = 0; c < 256; c++) {
            int bits = Float.floatToRawIntBits(map[c]);
            for (int k = 0; k < 4; k++) {
                out[256 * k + c] = (byte) (bits >>> (8 * k));
            }
        }
        return out;
    }

    /** ATen's CPU linspace kernel, with the contraction into FMA that GCC applies on x86. */
    static float[] linspace(float start, float end, int steps) {
        float[] r = new float[steps];
        float step = (end - start) / (float) (steps - 1);
        int half = steps / 2;
        for (int i = 0; i < steps; i++) {
            r[i] = i < half ? Math.fma(step, (float) i, start) : Math.fma(-step, (float) (steps - i - 1), end);
        }
        return r;
    }

    /**
     * bitsandbytes {@code quantize_2D}: a 7-step binary search, then the nearer of the final pivot's
     * neighbours using the float32 midpoint {@code (a+b)*0.5f}; ties go to the pivot (even index).
     * NaN maps to code 0. Branch-light on purpose: this runs twice per element per 8-bit step.
     */
    public static int quantize(float[] code, float x, boolean signed) {
        int pivot = 127;
        int lowerPivot = 0;
        int upperPivot = 255;
        float lower = signed ? -1.0f : 0.0f;
        float upper = 1.0f;
        float val = code[127];
        for (int i = 64; i > 0; i >>= 1) {
            if (x > val) {
                lowerPivot = pivot;
                lower = val;
                pivot += i;
            } else {
                upperPivot = pivot;
                upper = val;
                pivot -= i;
            }
            val = code[pivot];
        }
        if (x > val) {
            return x > (upper + val) * 0.5f ? upperPivot : pivot;
        }
        return x < (lower + val) * 0.5f ? lowerPivot : pivot;
    }

    /**
     * {@link #quantize} on the unsigned map, by table (see {@link Lut}). NaN gives 0.
     */
    public static int quantizeUnsigned(float x) {
        return x != x ? 0 : lookup(UNSIGNED_LUT, x);
    }

    /**
     * The table step alone, for callers that know {@code x} is not NaN (the kernels, when the block's
     * absmax is finite and > 0). On the signed map the result includes the sign fix.
     */
    public static int lookup(boolean signed, float x) {
        return lookup(signed ? SIGNED_LUT : UNSIGNED_LUT, x);
    }

    private static int lookup(Lut t, float x) {
        final long e = t.packed[Float.floatToRawIntBits(x) >>> 16];
        return x > Float.intBitsToFloat((int) (e >>> 32)) ? (int) (e >>> 8) & 0xFF : (int) e & 0xFF;
    }

    /**
     * The search table in 32 bits per key, for gathers (one int per lane). A key's floats, taken in
     * increasing value order, are numbered by their low 16 bits ({@code low} for positive keys,
     * {@code 0xFFFF - low} for negative ones, whose magnitude grows with the bits); the upper code is
     * picked from number {@code t} on. Entry: {@code t << 16 | upper << 8 | lower}. Where every float of
     * the key picks the same code (no midpoint inside, or one at the key's edge) both codes are that
     * code and t is 0, so t always fits 16 bits.
     *
     * <p>NaN keys answer what the scalar quantizers answer for a NaN state: 255 on the signed map
     * ({@link #quantizeSignedRatio} with a NaN value), 0 on the unsigned one; +-Inf keep their codes.
     */
    private static int[] packInt(Lut lut, boolean signed) {
        int[] out = new int[1 << 16];
        for (int key = 0; key < (1 << 16); key++) {
            long e = lut.packed[key];
            float thr = Float.intBitsToFloat((int) (e >>> 32));
            int upper = (int) (e >>> 8) & 0xFF;
            int lower = (int) e & 0xFF;
            boolean negative = key >= 0x8000;
            float lo = Float.intBitsToFloat(key << 16 | (negative ? 0xFFFF : 0));
            float hi = Float.intBitsToFloat(key << 16 | (negative ? 0 : 0xFFFF));
            int t; // floats of the key that are <= thr (they pick lower)
            if (thr != thr || thr >= hi) {
                t = 0x10000;
            } else if (thr < lo) {
                t = 0;
            } else {
                int low = Float.floatToRawIntBits(thr) & 0xFFFF;
                t = (negative ? 0xFFFF - low : low) + 1;
            }
            if (t == 0) {
                lower = upper;
            } else if (t == 0x10000) {
                upper = lower;
            }
            if (t == 0x10000 || lower == upper) {
                t = 0;
            }
            if ((key & 0x7F80) == 0x7F80) {
                // exponent 255: +-Inf at low 0 (order 0 if positive, 0xFFFF if negative), NaN elsewhere
                int nan = signed ? 255 : 0;
                int inf = negative ? 0 : 255;
                boolean hasInf = (key & 0x7F) == 0;
                if (!hasInf || inf == nan) {
                    t = 0;
                    lower = upper = nan;
                } else if (negative) {
                    t = 0xFFFF;
                    lower = nan;
                    upper = inf;
                } else {
                    t = 1;
                    lower = inf;
                    upper = nan;
                }
            }
            out[key] = t << 16 | upper << 8 | lower;
        }
        return out;
    }

    /** The int table's answer for {@code x}: what a vector lane computes, in scalar code. */
    static int lookupInt(boolean signed, float x) {
        final int b = Float.floatToRawIntBits(x);
        final int e = (signed ? SIGNED_LUT_INT : UNSIGNED_LUT_INT)[b >>> 16];
        final int order = (b & 0xFFFF) ^ ((b >> 31) & 0xFFFF);
        return (order >= (e >>> 16) ? e >>> 8 : e) & 0xFF;
    }

    /**
     * Signed quantization as the optimizer stores m: the nearest code of {@code value / absmax}; then,
     * if the code's sign differs from the value's, one code toward the value (uint8 wrap-around:
     * 0 - 1 = 255). A block of all-zero state gives 0/0 = NaN, code 0, then 255 (or 0 for -0.0);
     * harmless since it dequantizes to a code times absmax 0.
     */
    public static int quantizeSigned(float value, float absmax) {
        return quantizeSignedRatio(value, value / absmax);
    }

    /** {@link #quantizeSigned(float, float)} with {@code x = value / absmax} already computed. */
    public static int quantizeSignedRatio(float value, float x) {
        if (x != x) {
            // code 0 (-0.99...) then the sign fix, which reads the value's sign. A NaN value counts as
            // positive, as CUDA's canonical NaN (0x7fffffff) is: the sign bit of a NaN in Java depends on
            // which operand the JIT (or a vector unit) propagated, so reading it would make codes depend
            // on the compiler; positive NaN -> 0 - 1 = 255.
            return value != value ? 255 : Float.floatToRawIntBits(value) < 0 ? 0 : (value > 0 ? 1 : 255);
        }
        return lookup(SIGNED_LUT, x);
    }

    /**
     * Search table: floats with the same top 16 bits (sign, exponent, 7 mantissa bits; a 0.8% value
     * range) hold at most one midpoint between adjacent codes, so the nearest code is one of two and
     * a single compare picks it. Entry layout (one long per key, one memory access):
     *
     * <pre>
     *   bits 63..32  threshold (float bits): x > threshold picks the upper code; the tie rule (a tie
     *                goes to the even index) is folded in by using nextDown(midpoint) for even codes
     *   bits 15..8   upper code        bits 7..0  lower code     (signed map: after the sign fix)
     * </pre>
     *
     * 64K entries x 8 bytes per map; only the few thousand keys of [-1, 1] are ever hot. The build
     * fails if a key ever held two midpoints; a test checks the table against {@link #quantize} at
     * every key's ends and on random bit patterns (and it was checked once on all 2^32 floats).
     */
    private static final class Lut {
        final long[] packed = new long[1 << 16];

        Lut(float[] code, boolean signFix) {
            float[] mid = new float[256]; // mid[k] lies between code[k-1] and code[k], k = 1..255
            for (int k = 1; k < 256; k++) {
                mid[k] = (code[k - 1] + code[k]) * 0.5f;
            }
            for (int key = 0; key < (1 << 16); key++) {
                float a = Float.intBitsToFloat(key << 16);
                float b = Float.intBitsToFloat((key << 16) | 0xFFFF);
                boolean negative = key >= 0x8000;
                int lower;
                float threshold;
                if (Float.isNaN(a) || Float.isNaN(b)) {
                    // exponent-255 keys: +Inf (bits 0x7F800000) is above every code, -Inf below all; NaN is handled by the caller
                    lower = negative ? 0 : 255;
                    threshold = Float.POSITIVE_INFINITY;
                } else {
                    float lo = Math.min(a, b);
                    float hi = Math.max(a, b);
                    int below = 0; // midpoints < lo
                    int inside = 0;
                    int k = -1;
                    for (int j = 1; j < 256; j++) {
                        if (mid[j] < lo) {
                            below++;
                        } else if (mid[j] <= hi) {
                            inside++;
                            k = j;
                        }
                    }
                    if (inside > 1) {
                        throw new IllegalStateException("quantization table key " + key + " holds " + inside + " midpoints");
                    }
                    lower = below;
                    threshold = inside == 0 ? Float.POSITIVE_INFINITY : (k % 2 == 0 ? Math.nextDown(mid[k]) : mid[k]);
                }
                int upper = Math.min(255, lower + 1);
                if (signFix) {
                    lower = fixSign(code, lower, negative);
                    upper = fixSign(code, upper, negative);
                }
                packed[key] = ((long) Float.floatToRawIntBits(threshold) << 32) | (upper << 8) | lower;
            }
        }

        /**
         * The optimizer's sign fix for a value whose sign is the key's: a positive value never lands on
         * a negative code, and a negative one that lands on +0.0 (or any non-negative code) steps down.
         */
        private static int fixSign(float[] code, int c, boolean negative) {
            boolean codeNegative = Float.floatToRawIntBits(code[c]) < 0;
            if (codeNegative == negative) {
                return c;
            }
            return (c + (negative ? -1 : 1)) & 0xFF;
        }
    }
}
