package dev.dreamcluster.optim;

import static org.junit.jupiter.api.Assertions.fail;

/** Bit-exact array assertions that report the first mismatch and the largest difference. */
final class Bits {
    private Bits() {}

    static void assertBitsEqual(float[] expected, float[] actual, String what) {
        assertBitsEqual(expected, 0, actual, 0, expected.length, what);
    }

    static void assertBitsEqual(float[] expected, int eOff, float[] actual, int aOff, int n, String what) {
        int first = -1;
        int count = 0;
        double maxDiff = 0;
        for (int i = 0; i < n; i++) {
            float e = expected[eOff + i];
            float a = actual[aOff + i];
            if (Float.floatToRawIntBits(e) != Float.floatToRawIntBits(a)
                    && !(Float.isNaN(e) && Float.isNaN(a))) {
                if (first < 0) {
                    first = i;
                }
                count++;
                maxDiff = Math.max(maxDiff, Math.abs((double) e - a));
            }
        }
        if (first >= 0) {
            fail(what + ": " + count + " of " + n + " differ; first at " + first + " expected "
                    + expected[eOff + first] + " got " + actual[aOff + first] + "; max |diff| " + maxDiff);
        }
    }

    static void assertBytesEqual(byte[] expected, byte[] actual, String what) {
        if (expected.length != actual.length) {
            fail(what + ": length " + actual.length + ", expected " + expected.length);
        }
        for (int i = 0; i < expected.length; i++) {
            if (expected[i] != actual[i]) {
                int count = 0;
                for (int j = i; j < expected.length; j++) {
                    count += expected[j] != actual[j] ? 1 : 0;
                }
                fail(what + ": " + count + " codes differ; first at " + i + " expected " + (expected[i] & 0xFF)
                        + " got " + (actual[i] & 0xFF));
            }
        }
    }
}
