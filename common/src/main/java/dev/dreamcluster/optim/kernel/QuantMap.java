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
    /** Padding lanes of a partial last block read the signed code 128 (the smallest positive value). */
    public static final int SIGNED_PAD_CODE = 128;

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
     * Signed quantization as the optimizer stores m: after the search, if the code's sign differs
     * from the value's, step one code toward the value (uint8 wrap-around: 0 - 1 = 255). A block of
     * all-zero state gives 0/0 = NaN, code 0, then 255; harmless since it dequantizes to 255's value
     * times absmax 0.
     */
    public static int quantizeSigned(float[] code, float value, float absmax) {
        int c = quantize(code, value / absmax, true);
        if ((Float.floatToRawIntBits(code[c]) < 0) != (Float.floatToRawIntBits(value) < 0)) {
            c = (c + (value > 0 ? 1 : -1)) & 0xFF;
        }
        return c;
    }
}
