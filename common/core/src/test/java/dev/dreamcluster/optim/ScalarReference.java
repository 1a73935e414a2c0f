package dev.dreamcluster.optim;

import dev.dreamcluster.optim.kernel.BnbScalars;
import dev.dreamcluster.optim.kernel.QuantMap;

/**
 * A second, deliberately plain transcription of the bitsandbytes 8-bit kernels (spec 3.2 and 4.2)
 * for one whole tensor, with the brute-force quantizer: the oracle for edge inputs the shipped
 * vectors do not cover (partial blocks, non-finite and extreme gradients).
 */
final class ScalarReference {
    private ScalarReference() {}

    static int q(float[] code, float x) {
        return QuantizeTest.bruteForce(code, x);
    }

    static int qSigned(float s, float absmax) {
        float[] code = QuantMap.SIGNED;
        int c = q(code, s / absmax);
        boolean codeNeg = Float.floatToRawIntBits(code[c]) < 0;
        boolean valNeg = !Float.isNaN(s) && Float.floatToRawIntBits(s) < 0; // NaN is positive, as on CUDA
        if (codeNeg != valNeg) {
            c = (c + (s > 0 ? 1 : -1) + 256) % 256;
        }
        return c;
    }

    static void adam8bit(float[] p, float[] g, byte[] c1, byte[] c2, float[] a1, float[] a2, BnbScalars s) {
        float[] q1 = QuantMap.SIGNED;
        float[] q2 = QuantMap.UNSIGNED;
        int n = p.length;
        int blocks = (n + 255) / 256;
        for (int b = 0; b < blocks; b++) {
            float[] m = new float[256];
            float[] v = new float[256];
            float max1 = 0;
            float max2 = 0;
            for (int j = 0; j < 256; j++) {
                int i = b * 256 + j;
                float gj = i < n ? g[i] : 0f;
                int k1 = i < n ? c1[i] & 0xFF : 128;
                int k2 = i < n ? c2[i] & 0xFF : 0;
                if (!Float.isNaN(gj) && !Float.isInfinite(gj)) {
                    v[j] = q2[k2] * a2[b];
                    v[j] = (v[j] * s.beta2()) + ((s.oneMinusBeta2() * gj) * gj);
                    m[j] = q1[k1] * a1[b];
                    m[j] = (m[j] * s.beta1()) + (s.oneMinusBeta1() * gj);
                }
                if (Math.abs(m[j]) > max1) {
                    max1 = Math.abs(m[j]);
                }
                if (Math.abs(v[j]) > max2) {
                    max2 = Math.abs(v[j]);
                }
            }
            a1[b] = max1;
            a2[b] = max2;
            for (int j = 0; j < 256 && b * 256 + j < n; j++) {
                int i = b * 256 + j;
                if (!Float.isNaN(g[i]) && !Float.isInfinite(g[i])) {
                    p[i] = p[i] + (s.stepSize() * (m[j] / ((float) Math.sqrt(v[j]) + s.epsTimesCorrection2())));
                    if (s.decay()) {
                        p[i] = p[i] * s.wdFactor();
                    }
                }
                c1[i] = (byte) qSigned(m[j], max1);
                c2[i] = (byte) q(q2, v[j] / max2);
            }
        }
    }

    static void lion8bit(float[] p, float[] g, byte[] c1, float[] a1, BnbScalars s) {
        float[] q1 = QuantMap.SIGNED;
        int n = p.length;
        int blocks = (n + 255) / 256;
        for (int b = 0; b < blocks; b++) {
            float[] m = new float[256];
            float max1 = 0;
            for (int j = 0; j < 256; j++) {
                int i = b * 256 + j;
                float gj = i < n ? g[i] : 0f;
                int k1 = i < n ? c1[i] & 0xFF : 128;
                float s1 = q1[k1] * a1[b];
                if (i < n) {
                    if (s.decay()) {
                        p[i] = p[i] * s.wdFactor();
                    }
                    float c = (s1 * s.beta1()) + (s.oneMinusBeta1() * gj);
                    float sgn = c > 0 ? 1f : (c < 0 ? -1f : 0f);
                    p[i] = p[i] - s.lr() * sgn;
                }
                m[j] = (s1 * s.beta2()) + (s.oneMinusBeta2() * gj);
                if (Math.abs(m[j]) > max1) {
                    max1 = Math.abs(m[j]);
                }
            }
            a1[b] = max1;
            for (int j = 0; j < 256 && b * 256 + j < n; j++) {
                c1[b * 256 + j] = (byte) qSigned(m[j], max1);
            }
        }
    }
}
