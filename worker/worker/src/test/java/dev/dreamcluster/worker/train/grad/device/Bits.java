package dev.dreamcluster.worker.train.grad.device;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

/** Bit-for-bit comparisons that name the first difference. NaN equals NaN whatever its payload and sign. */
final class Bits {
    private Bits() {}

    static void assertFloats(float[] want, float[] got, String what) {
        if (want == null || got == null) {
            assertEquals(want == null, got == null, what + ": one array is null");
            return;
        }
        assertEquals(want.length, got.length, what + ": length");
        assertFloats(want, 0, got, 0, want.length, what);
    }

    static void assertFloats(float[] want, int wantOff, float[] got, int gotOff, int n, String what) {
        for (int i = 0; i < n; i++) {
            float a = want[wantOff + i];
            float b = got[gotOff + i];
            if (Float.floatToIntBits(a) != Float.floatToIntBits(b)) {
                fail(what + ": element " + i + " is " + b + " (0x" + Integer.toHexString(Float.floatToRawIntBits(b))
                        + "), expected " + a + " (0x" + Integer.toHexString(Float.floatToRawIntBits(a)) + ")");
            }
        }
    }

    static void assertBytes(byte[] want, byte[] got, String what) {
        if (want == null || got == null) {
            assertEquals(want == null, got == null, what + ": one array is null");
            return;
        }
        assertEquals(want.length, got.length, what + ": length");
        for (int i = 0; i < want.length; i++) {
            if (want[i] != got[i]) {
                fail(what + ": element " + i + " is " + (got[i] & 0xFF) + ", expected " + (want[i] & 0xFF));
            }
        }
    }
}
