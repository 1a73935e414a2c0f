package dev.dreamcluster.optim.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** The 32-bit search table the vector kernels gather from answers as the 64-bit one does. */
class QuantMapIntTableTest {
    @Test
    void intTableShouldEqualLongTableAtEveryKeyBoundaryAndOnRandomBitPatterns() {
        SplittableRandom rnd = new SplittableRandom(5);
        for (boolean signed : new boolean[] {true, false}) {
            for (int key = 0; key < (1 << 16); key++) {
                for (int low = 0; low < 0x10000; low += (low < 8 || low > 0xFFF0 || (low > 0x7FF8 && low < 0x8008)) ? 1 : 4093) {
                    float x = Float.intBitsToFloat(key << 16 | low);
                    if (x == x) {
                        assertEquals(QuantMap.lookup(signed, x), QuantMap.lookupInt(signed, x), "x bits " + Integer.toHexString(key << 16 | low));
                    }
                }
            }
            for (int i = 0; i < 1_000_000; i++) {
                float x = Float.intBitsToFloat(rnd.nextInt());
                int want = x == x ? QuantMap.lookup(signed, x) : signed ? QuantMap.quantizeSignedRatio(x, x) : QuantMap.quantizeUnsigned(x);
                assertEquals(want, QuantMap.lookupInt(signed, x), "x bits " + Integer.toHexString(Float.floatToRawIntBits(x)));
            }
            for (float x : new float[] {Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY}) {
                assertEquals(QuantMap.lookup(signed, x), QuantMap.lookupInt(signed, x), "x " + x);
            }
            for (int bits : new int[] {0x7F800001, 0x7FC00000, 0xFFC00000, 0xFF800001, 0x7FFFFFFF, 0xFFFFFFFF}) {
                assertEquals(signed ? 255 : 0, QuantMap.lookupInt(signed, Float.intBitsToFloat(bits)), "NaN " + Integer.toHexString(bits));
            }
            // every float of the hot range [-1, 1] near every code midpoint
            float[] code = signed ? QuantMap.SIGNED : QuantMap.UNSIGNED;
            for (int k = 1; k < 256; k++) {
                float mid = (code[k - 1] + code[k]) * 0.5f;
                float x = mid;
                for (int d = 0; d < 4; d++) {
                    x = Math.nextDown(x);
                }
                for (int d = 0; d < 9; d++, x = Math.nextUp(x)) {
                    assertEquals(QuantMap.lookup(signed, x), QuantMap.lookupInt(signed, x), "near midpoint " + k + ": " + x);
                }
            }
        }
    }
}
