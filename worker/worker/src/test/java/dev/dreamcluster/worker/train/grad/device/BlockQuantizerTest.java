package dev.dreamcluster.worker.train.grad.device;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.dreamcluster.optim.kernel.QuantMap;
import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The device quantiser against {@link QuantMap}'s, code for code: a sweep of float bit patterns over
 * [-1, 1] (every 199th pattern, about 10.7 million values, plus every float within 48 ulps of each
 * code threshold and within 4 ulps of each log2 bin edge), and the optimizer's ratio rules for zero,
 * infinite and NaN states and maxima. A one-off run over all 2.1 billion patterns of [-1, 1] agreed as
 * well (see docs/gpu.md).
 */
class BlockQuantizerTest {
    static final int STRIDE = 199;
    static NDManager root;
    static BlockQuantizer quant;

    @BeforeAll
    static void engine() {
        Engine.getEngine("PyTorch");
        root = NDManager.newBaseManager(Device.cpu());
        quant = new BlockQuantizer(root);
    }

    @AfterAll
    static void close() {
        quant.close();
        root.close();
    }

    /** Device codes of {@code x} against absmax 1 (the ratio is x itself). */
    static byte[] codes(float[] x, boolean signed) {
        int rows = (x.length + 255) / 256;
        float[] padded = Arrays.copyOf(x, rows * 256);
        try (NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            NDArray t = DeviceCopy.upload(root, padded).reshape(rows, 256);
            NDArray one = root.ones(new Shape(rows, 1));
            NDArray c = signed ? quant.quantizeSigned(t, one) : quant.quantizeUnsigned(t, one);
            assertEquals(DataType.UINT8, c.getDataType());
            byte[] out = new byte[rows * 256];
            DeviceCopy.download(c.reshape(-1), 0, out, 0, out.length, DeviceCopy.MAX_CHUNK_BYTES);
            return Arrays.copyOf(out, x.length);
        }
    }

    static void check(float[] x, boolean signed, String what) {
        byte[] got = codes(x, signed);
        for (int i = 0; i < x.length; i++) {
            int want = signed ? QuantMap.quantizeSigned(x[i], 1f) : QuantMap.quantizeUnsigned(x[i]);
            if ((got[i] & 0xFF) != want) {
                fail(what + ": x = " + x[i] + " (0x" + Integer.toHexString(Float.floatToRawIntBits(x[i])) + ") gave code "
                        + (got[i] & 0xFF) + ", QuantMap " + want);
            }
        }
    }

    @Test
    void shouldEqualQuantMapOnASweepOfBitPatterns() {
        int batch = 1 << 20;
        float[] x = new float[batch];
        for (int side = 0; side < 2; side++) { // [+0, 1] then [-1, -0]
            int n = 0;
            for (long i = 0; i <= 0x3F800000L; i += STRIDE) {
                int bits = (int) i | (side == 1 ? 0x80000000 : 0);
                x[n++] = Float.intBitsToFloat(bits);
                if (n == batch || i + STRIDE > 0x3F800000L) {
                    float[] part = Arrays.copyOf(x, n);
                    check(part, true, "signed sweep");
                    if (side == 0) {
                        check(part, false, "unsigned sweep");
                    }
                    n = 0;
                }
            }
        }
    }

    @Test
    void shouldEqualQuantMapAroundEveryThresholdAndBinEdge() {
        float[] near = new float[0];
        for (float[] t : new float[][] {BlockQuantizer.T_UNSIGNED, BlockQuantizer.T_POSITIVE, BlockQuantizer.T_NEGATIVE}) {
            for (float thr : t) {
                if (Float.isFinite(thr)) {
                    near = concat(near, around(thr, 48));
                }
            }
        }
        for (int k = 0; k <= BlockQuantizer.BINS; k++) {
            float edge = (float) Math.pow(2, -k / 128.0);
            near = concat(near, around(edge, 4));
            near = concat(near, around(-edge, 4));
        }
        float[] special = {0f, -0f, Float.MIN_VALUE, -Float.MIN_VALUE, Float.MIN_NORMAL, -Float.MIN_NORMAL, 1e-30f, -1e-30f,
            1f, -1f, 0.99296875f, -0.99296875f, Math.nextDown(1f), -Math.nextDown(1f), 5.5e-7f, -5.5e-7f, 2.75e-7f, -2.75e-7f};
        near = concat(near, special);
        float[] signed = clamp(near, -1f, 1f);
        check(signed, true, "signed near thresholds");
        check(clamp(near, 0f, 1f), false, "unsigned near thresholds");
    }

    /** Rows are (c - 1, T[c], T[c + 1]) with integral bases and ordered thresholds (c = 0: (0, +Inf, T[1])). */
    @Test
    void rowsShouldBeWellFormed() {
        for (float[] rows : new float[][] {BlockQuantizer.ROWS_UNSIGNED, BlockQuantizer.ROWS_SIGNED}) {
            for (int r = 0; r < rows.length / 3; r++) {
                float base = rows[3 * r];
                float lo = rows[3 * r + 1];
                float hi = rows[3 * r + 2];
                assertTrue(base >= 0 && base <= 254 && base == Math.rint(base), "row " + r + " base " + base);
                assertTrue(lo <= hi || (base == 0 && lo == Float.POSITIVE_INFINITY), "row " + r + ": " + lo + " > " + hi);
            }
        }
        assertEquals(Float.POSITIVE_INFINITY, BlockQuantizer.T_NEGATIVE[127]);
        assertEquals(Float.NEGATIVE_INFINITY, BlockQuantizer.T_POSITIVE[127]);
    }

    /**
     * The optimizer's cases: x = value / absmax with |value| <= absmax, absmax 0 (an all-zero block,
     * 0/0), absmax Inf (an overflowed state: finite/Inf = 0, Inf/Inf = NaN), NaN values. The Java kernels'
     * rule is {@code quantizeSignedRatio(value, value / absmax)} and {@code quantizeUnsigned(value /
     * absmax)}.
     */
    @Test
    void shouldFollowTheKernelsRulesForZeroInfiniteAndNaN() {
        SplittableRandom rnd = new SplittableRandom(7);
        float[] maxima = {0f, Float.MIN_VALUE, 1e-40f, 1e-30f, 1e-3f, 1f, 7.5f, 3e38f, Float.MAX_VALUE, Float.POSITIVE_INFINITY};
        int rows = maxima.length;
        float[] values = new float[rows * 256];
        for (int r = 0; r < rows; r++) {
            float m = maxima[r];
            for (int j = 0; j < 256; j++) {
                float v;
                if (m == 0f) {
                    v = j % 2 == 0 ? 0f : -0f;
                } else if (m == Float.POSITIVE_INFINITY) {
                    float[] pick = {Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.NaN, 0f, -0f, 1f, -3e38f, 1e-45f};
                    v = pick[j % pick.length];
                } else if (j == 0) {
                    v = m;
                } else if (j == 1) {
                    v = -m;
                } else if (j == 2) {
                    v = Float.NaN;
                } else if (j < 8) {
                    v = j % 2 == 0 ? 0f : -0f;
                } else {
                    v = (float) (m * (rnd.nextDouble() * 2 - 1) * Math.pow(10, -rnd.nextInt(12)));
                }
                values[r * 256 + j] = v;
            }
        }
        byte[] signed;
        byte[] unsigned;
        try (NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            NDArray s = DeviceCopy.upload(root, values).reshape(rows, 256);
            NDArray absS = s.abs();
            NDArray max = DeviceCopy.upload(root, maxima).reshape(rows, 1);
            signed = new byte[values.length];
            unsigned = new byte[values.length];
            DeviceCopy.download(quant.quantizeSigned(s, max).reshape(-1), 0, signed, 0, values.length, 1 << 20);
            DeviceCopy.download(quant.quantizeUnsigned(absS, max).reshape(-1), 0, unsigned, 0, values.length, 1 << 20);
        }
        for (int r = 0; r < rows; r++) {
            for (int j = 0; j < 256; j++) {
                float v = values[r * 256 + j];
                float m = maxima[r];
                int wantS = QuantMap.quantizeSignedRatio(v, v / m);
                int wantU = QuantMap.quantizeUnsigned(Math.abs(v) / m);
                String w = "value " + v + " absmax " + m;
                assertEquals(wantS, signed[r * 256 + j] & 0xFF, "signed " + w);
                assertEquals(wantU, unsigned[r * 256 + j] & 0xFF, "unsigned " + w);
            }
        }
    }

    @Test
    void dequantizeShouldBeTheMapTimesAbsmax() {
        byte[] codes = new byte[3 * 256];
        for (int i = 0; i < codes.length; i++) {
            codes[i] = (byte) i;
        }
        float[] maxima = {0.37f, 0f, Float.POSITIVE_INFINITY};
        try (NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            NDArray c = DeviceCopy.zeros(root, codes.length, DataType.UINT8);
            DeviceCopy.upload(codes, 0, c, 0, codes.length, 100);
            NDArray max = DeviceCopy.upload(root, maxima).reshape(3, 1);
            for (boolean signed : new boolean[] {true, false}) {
                float[] got = new float[codes.length];
                DeviceCopy.download(quant.dequantize(c.reshape(3, 256), signed, max).reshape(-1), 0, got, 0, got.length);
                float[] want = new float[codes.length];
                for (int i = 0; i < codes.length; i++) {
                    want[i] = (signed ? QuantMap.SIGNED : QuantMap.UNSIGNED)[i % 256] * maxima[i / 256];
                }
                Bits.assertFloats(want, got, signed ? "signed" : "unsigned");
            }
        }
    }

    static float[] around(float x, int ulps) {
        float[] out = new float[2 * ulps + 1];
        int bits = Float.floatToRawIntBits(x);
        for (int d = -ulps; d <= ulps; d++) {
            // step in value order: for negative floats larger bits are smaller values
            out[d + ulps] = Float.intBitsToFloat(bits + d);
        }
        return out;
    }

    static float[] clamp(float[] x, float lo, float hi) {
        float[] out = new float[x.length];
        int n = 0;
        for (float v : x) {
            if (v >= lo && v <= hi) {
                out[n++] = v;
            }
        }
        return Arrays.copyOf(out, n);
    }

    static float[] concat(float[] a, float[] b) {
        float[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
