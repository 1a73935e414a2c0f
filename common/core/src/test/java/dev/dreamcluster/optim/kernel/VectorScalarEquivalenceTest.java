package dev.dreamcluster.optim.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The vector kernels ({@link VectorKernels}) against the scalar ones, bit for bit, over several steps
 * of gradients that mix magnitudes (1e-8..1e2 inside a block) with zeros, -0, subnormals, huge values
 * (whose squares overflow and make an absmax infinite), NaN and +-Inf, at lengths with partial
 * vectors and partial blocks. The scalar kernels are the ones the reference vectors check; the
 * vector ones must not change a bit. Lengths are large enough (~0.5-1M) that C2 compiles the loops
 * (the Vector API intrinsics) during the test, not only the interpreter's fallback. Skipped when the
 * JVM lacks jdk.incubator.vector.
 */
class VectorScalarEquivalenceTest {
    static final int STEPS = 6;

    @BeforeEach
    void needsVectors() {
        assumeTrue(Simd.ENABLED, "the JVM was started without " + Simd.JVM_FLAG);
    }

    static float[] grads(int n, int step) {
        SplittableRandom r = new SplittableRandom(100 + step);
        float[] g = new float[n];
        float[] special = {0f, -0f, Float.MIN_VALUE, -1e-40f, 3e20f, -7e25f, Float.NaN, Float.POSITIVE_INFINITY,
            Float.NEGATIVE_INFINITY, Float.MAX_VALUE};
        for (int i = 0; i < n; i++) {
            g[i] = r.nextInt(40) == 0 ? special[r.nextInt(special.length)]
                    : (float) (r.nextGaussian() * Math.pow(10, -8 + r.nextInt(11)));
        }
        return g;
    }

    static float[] params(int n) {
        SplittableRandom r = new SplittableRandom(7);
        float[] p = new float[n];
        for (int i = 0; i < n; i++) {
            p[i] = i % 97 == 0 ? -0f : (float) r.nextGaussian();
        }
        return p;
    }

    /**
     * Bit-identical, except that any NaN equals any NaN: Java leaves a NaN's sign and payload to the
     * hardware and to which operand the compiler propagates, so the interpreter, C2 and the vector
     * unit may differ there (the kernels never let a NaN's sign bit reach a code or a branch).
     */
    static void assertBits(float[] want, float[] got, String what) {
        for (int i = 0; i < want.length; i++) {
            if (Float.floatToIntBits(want[i]) != Float.floatToIntBits(got[i])) {
                assertEquals(Integer.toHexString(Float.floatToRawIntBits(want[i])), Integer.toHexString(Float.floatToRawIntBits(got[i])),
                        what + "[" + i + "] differs: " + want[i] + " vs " + got[i]);
            }
        }
    }

    static void assertBytes(byte[] want, byte[] got, String what) {
        for (int i = 0; i < want.length; i++) {
            assertEquals(want[i], got[i], what + "[" + i + "]");
        }
    }

    @Test
    void adamwVectorShouldMatchScalarBits() {
        for (double wd : new double[] {0.0, 0.01}) {
            for (double beta1 : new double[] {0.9, 0.3}) { // lerp weight 0.1 and 0.7: both of ATen's formulas
                int n = (1 << 19) + 3;
                float[] p1 = params(n);
                float[] p2 = p1.clone();
                float[] m1 = new float[n];
                float[] v1 = new float[n];
                float[] m2 = new float[n];
                float[] v2 = new float[n];
                for (int t = 1; t <= STEPS; t++) {
                    AdamWKernel.Scalars s = AdamWKernel.Scalars.of(1e-3, beta1, 0.999, 1e-8, wd, t);
                    float[] g = grads(n, t);
                    AdamWKernel.stepScalar(p1, 0, g, 0, m1, v1, 0, n, s);
                    VectorKernels.adamw(p2, 0, g, 0, m2, v2, 0, n, s);
                }
                assertBits(p1, p2, "adamw p");
                assertBits(m1, m2, "adamw m");
                assertBits(v1, v2, "adamw v");
            }
        }
    }

    @Test
    void lionVectorShouldMatchScalarBits() {
        int n = (1 << 20) + 7;
        float[] p1 = params(n);
        float[] p2 = p1.clone();
        float[] m1 = new float[n];
        float[] m2 = new float[n];
        for (int t = 1; t <= STEPS; t++) {
            LionKernel.Scalars s = LionKernel.Scalars.of(1e-4, 0.9, 0.99, 0.01);
            float[] g = grads(n, t);
            LionKernel.stepScalar(p1, 0, g, 0, m1, 0, n, s);
            VectorKernels.lion(p2, 0, g, 0, m2, 0, n, s);
        }
        assertBits(p1, p2, "lion p");
        assertBits(m1, m2, "lion m");
    }

    /** The vector 8-bit kernels' two ways to read the maps: gathers, and (where the CPU has vpermb) registers. */
    static boolean[] mapPaths() {
        return Simd.BYTE_PERMUTE ? new boolean[] {false, true} : new boolean[] {false};
    }

    @Test
    void adam8bitVectorShouldMatchScalarBits() {
        for (boolean planes : mapPaths()) {
            adam8bitVectorShouldMatchScalarBits(planes);
        }
    }

    private void adam8bitVectorShouldMatchScalarBits(boolean planes) {
        for (double wd : new double[] {0.0, 0.01}) {
            int blocks = 2001;
            int n = 256 * (blocks - 1) + 37;
            float[] p1 = params(n);
            float[] p2 = p1.clone();
            byte[] a1 = new byte[n];
            byte[] b1 = new byte[n];
            byte[] a2 = new byte[n];
            byte[] b2 = new byte[n];
            float[] x1 = new float[blocks];
            float[] y1 = new float[blocks];
            float[] x2 = new float[blocks];
            float[] y2 = new float[blocks];
            float[][] scratch = new float[3][256];
            int[] idx = new int[256];
            for (int t = 1; t <= STEPS; t++) {
                BnbScalars s = BnbScalars.of(1e-3, 0.9, 0.999, 1e-8, wd, t);
                float[] g = grads(n, t);
                Blockwise8bitKernel.adam(p1, 0, g, 0, a1, b1, 0, x1, y1, 0, n, 0, blocks, s, scratch[0], scratch[1], scratch[2], idx, false);
                Blockwise8bitKernel.adam(p2, 0, g, 0, a2, b2, 0, x2, y2, 0, n, 0, blocks, s, scratch[0], scratch[1], scratch[2], idx, true, planes);
                assertBits(x1, x2, "absmax1 step " + t + (planes ? " (maps in registers)" : " (maps gathered)"));
                assertBits(y1, y2, "absmax2 step " + t + (planes ? " (maps in registers)" : " (maps gathered)"));
            }
            assertBits(p1, p2, "adam8bit p" + (planes ? " (maps in registers)" : " (maps gathered)"));
            assertBytes(a1, a2, "adam8bit m codes" + (planes ? " (maps in registers)" : " (maps gathered)"));
            assertBytes(b1, b2, "adam8bit v codes" + (planes ? " (maps in registers)" : " (maps gathered)"));
        }
    }

    @Test
    void lion8bitVectorShouldMatchScalarBits() {
        for (boolean planes : mapPaths()) {
            lion8bitVectorShouldMatchScalarBits(planes);
        }
    }

    private void lion8bitVectorShouldMatchScalarBits(boolean planes) {
        int blocks = 2001;
        int n = 256 * (blocks - 1) + 200;
        float[] p1 = params(n);
        float[] p2 = p1.clone();
        byte[] c1 = new byte[n];
        byte[] c2 = new byte[n];
        float[] x1 = new float[blocks];
        float[] x2 = new float[blocks];
        float[][] scratch = new float[2][256];
        int[] idx = new int[256];
        for (int t = 1; t <= STEPS; t++) {
            BnbScalars s = BnbScalars.of(1e-4, 0.9, 0.99, 0.0, 0.01, t);
            float[] g = grads(n, t);
            Blockwise8bitKernel.lion(p1, 0, g, 0, c1, 0, x1, 0, n, 0, blocks, s, scratch[0], scratch[1], idx, false);
            Blockwise8bitKernel.lion(p2, 0, g, 0, c2, 0, x2, 0, n, 0, blocks, s, scratch[0], scratch[1], idx, true, planes);
            assertBits(x1, x2, "lion8 absmax step " + t + (planes ? " (map in registers)" : " (map gathered)"));
        }
        assertBits(p1, p2, "lion8bit p" + (planes ? " (map in registers)" : " (map gathered)"));
        assertBytes(c1, c2, "lion8bit codes" + (planes ? " (map in registers)" : " (map gathered)"));
    }

    /**
     * Ordinary gradients (Gaussian, one scale per tensor, no special values): the codes then spread over
     * the whole of both maps (the mixed-magnitude gradients above leave most m codes at 0.0), so a wrong
     * map entry anywhere shows in p. Both 8-bit kernels, every way the vector form reads the maps.
     */
    @Test
    void eightBitVectorShouldMatchScalarBitsOnOrdinaryGradients() {
        int blocks = 513;
        int n = 256 * (blocks - 1) + 129;
        for (boolean planes : mapPaths()) {
            float[] p1 = params(n);
            float[] p2 = p1.clone();
            float[] q1 = p1.clone();
            float[] q2 = p1.clone();
            byte[][] c = new byte[6][n];
            float[][] am = new float[6][blocks];
            float[][] scratch = new float[3][256];
            int[] idx = new int[256];
            int[] seen = new int[256];
            for (int t = 1; t <= 12; t++) {
                SplittableRandom r = new SplittableRandom(t);
                float[] g = new float[n];
                for (int i = 0; i < n; i++) {
                    g[i] = (float) (r.nextGaussian() * 1e-2);
                }
                BnbScalars s = BnbScalars.of(1e-3, 0.9, 0.999, 1e-8, 0.01, t);
                Blockwise8bitKernel.adam(p1, 0, g, 0, c[0], c[1], 0, am[0], am[1], 0, n, 0, blocks, s, scratch[0], scratch[1], scratch[2], idx, false);
                Blockwise8bitKernel.adam(p2, 0, g, 0, c[2], c[3], 0, am[2], am[3], 0, n, 0, blocks, s, scratch[0], scratch[1], scratch[2], idx, true, planes);
                BnbScalars l = BnbScalars.of(1e-4, 0.9, 0.99, 0.0, 0.01, t);
                Blockwise8bitKernel.lion(q1, 0, g, 0, c[4], 0, am[4], 0, n, 0, blocks, l, scratch[0], scratch[1], idx, false);
                Blockwise8bitKernel.lion(q2, 0, g, 0, c[5], 0, am[5], 0, n, 0, blocks, l, scratch[0], scratch[1], idx, true, planes);
                for (byte b : c[0]) {
                    seen[b & 0xFF] |= 1;
                }
                for (byte b : c[1]) {
                    seen[b & 0xFF] |= 2;
                }
            }
            String how = planes ? " (maps in registers)" : " (maps gathered)";
            assertBits(p1, p2, "adam8bit p" + how);
            assertBytes(c[0], c[2], "adam8bit m codes" + how);
            assertBytes(c[1], c[3], "adam8bit v codes" + how);
            assertBits(q1, q2, "lion8bit p" + how);
            assertBytes(c[4], c[5], "lion8bit codes" + how);
            int mCodes = 0;
            int vCodes = 0;
            for (int k = 0; k < 256; k++) {
                mCodes += seen[k] & 1;
                vCodes += seen[k] >> 1;
            }
            // the data must reach most of both maps, or the comparison proves little
            assertTrue(mCodes > 200 && vCodes > 200, "codes used: m " + mCodes + ", v " + vCodes);
        }
    }

    /**
     * The in-register dequantizer returns every map entry's exact bits: all 256 codes in every lane
     * position of a 64-code chunk (the 64 rotations of 0..255), at unaligned offsets and with scalar tails.
     */
    @Test
    void registerDequantizerShouldReturnEveryMapEntry() {
        assumeTrue(Simd.BYTE_PERMUTE, "no vpermb here: the kernels gather from the maps");
        for (boolean signed : new boolean[] {true, false}) {
            float[] map = signed ? QuantMap.SIGNED : QuantMap.UNSIGNED;
            byte[] planes = signed ? QuantMap.SIGNED_PLANES : QuantMap.UNSIGNED_PLANES;
            byte[] codes = new byte[64 * 256 + 300];
            for (int r = 0; r < 64; r++) {
                for (int c = 0; c < 256; c++) {
                    codes[256 * r + c] = (byte) (c + 4 * r); // code c + 4r at position c: every code in every lane of a chunk
                }
            }
            float[] out = new float[256];
            for (int off : new int[] {0, 1, 37, 64 * 256 - 256}) {
                for (int start = off; start + 256 <= codes.length; start += 256 * 7 + 3) {
                    for (int n : new int[] {256, 200, 64, 63, 1}) {
                        java.util.Arrays.fill(out, Float.NaN);
                        VectorKernels.dequantize(codes, start, out, n, planes, map);
                        for (int j = 0; j < n; j++) {
                            assertEquals(Float.floatToRawIntBits(map[codes[start + j] & 0xFF]), Float.floatToRawIntBits(out[j]),
                                    (signed ? "signed" : "unsigned") + " code " + (codes[start + j] & 0xFF) + " at " + j + " of " + n);
                        }
                    }
                }
            }
        }
    }

    /** The vector re-quantization against the scalar table on every float within 4 ulps of every midpoint. */
    @Test
    void vectorQuantizeShouldMatchTableAtEveryMidpoint() {
        for (boolean signed : new boolean[] {true, false}) {
            float[] code = signed ? QuantMap.SIGNED : QuantMap.UNSIGNED;
            float[] x = new float[255 * 9 + 5];
            int n = 0;
            for (int k = 1; k < 256; k++) {
                float v = (code[k - 1] + code[k]) * 0.5f;
                for (int d = 0; d < 4; d++) {
                    v = Math.nextDown(v);
                }
                for (int d = 0; d < 9; d++, v = Math.nextUp(v)) {
                    x[n++] = v;
                }
            }
            x[n++] = 1f;
            x[n++] = signed ? -1f : 0f;
            x[n++] = 0f;
            x[n++] = -0f;
            x[n++] = Float.NaN;
            int[] idx = new int[256];
            byte[] got = new byte[n];
            for (int from = 0; from < n; from += 256) {
                int len = Math.min(256, n - from);
                float[] block = java.util.Arrays.copyOfRange(x, from, from + len);
                VectorKernels.quantize(block, 1f, got, from, idx, len, signed);
            }
            for (int i = 0; i < n; i++) {
                int want = x[i] != x[i] ? (signed ? 255 : 0) : QuantMap.lookup(signed, x[i]);
                assertEquals(want, got[i] & 0xFF, (signed ? "signed " : "unsigned ") + x[i] + " bits " + Integer.toHexString(Float.floatToRawIntBits(x[i])));
            }
        }
    }
}
