package dev.dreamcluster.optim;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.dreamcluster.optim.kernel.QuantMap;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** The binary-search quantizer equals a brute-force nearest-code search, ties to the even index. */
class QuantizeTest {

    /** Linear scan over the float32 midpoints; a value on a midpoint goes to the even index. */
    static int bruteForce(float[] code, float x) {
        int best = 0;
        for (int i = 1; i < 256; i++) {
            float mid = (code[i - 1] + code[i]) * 0.5f;
            if (x > mid) {
                best = i;
            } else {
                if (x == mid && i % 2 == 0) {
                    best = i;
                }
                break;
            }
        }
        return best;
    }

    static void check(float[] code, boolean signed, float x) {
        int want = bruteForce(code, x);
        assertEquals(want, QuantMap.quantize(code, x, signed), () -> "search, x = " + x + " (" + Float.floatToRawIntBits(x) + ")");
        int table = signed ? QuantMap.quantizeSigned(x, 1f) : QuantMap.quantizeUnsigned(x);
        int wantTable = signed ? ScalarReference.qSigned(x, 1f) : want;
        assertEquals(wantTable, table, () -> "table, x = " + x + " (" + Float.floatToRawIntBits(x) + ")");
    }

    /** The binary search, plus the optimizer's sign fix for the signed map (absmax 1: value = x). */
    static int search(float[] code, boolean signed, float x) {
        int c = QuantMap.quantize(code, x, signed);
        // a NaN counts as positive (CUDA's canonical NaN), whatever its sign bit
        boolean negative = Float.floatToRawIntBits(x) < 0 && !Float.isNaN(x);
        if (signed && (Float.floatToRawIntBits(code[c]) < 0) != negative) {
            c = (c + (x > 0 ? 1 : -1)) & 0xFF;
        }
        return c;
    }

    static int table(boolean signed, float x) {
        return signed ? QuantMap.quantizeSigned(x, 1f) : QuantMap.quantizeUnsigned(x);
    }

    @Test
    void tableShouldEqualSearchAtEveryKeyBoundaryAndOnRandomBitPatterns() {
        SplittableRandom rnd = new SplittableRandom(99);
        for (boolean signed : new boolean[] {true, false}) {
            float[] code = signed ? QuantMap.SIGNED : QuantMap.UNSIGNED;
            for (int key = 0; key < (1 << 16); key++) {
                for (int low : new int[] {0, 1, 0x7FFF, 0x8000, 0xFFFE, 0xFFFF}) {
                    float x = Float.intBitsToFloat((key << 16) | low);
                    assertEquals(search(code, signed, x), table(signed, x), "x bits " + ((key << 16) | low));
                }
            }
            for (int i = 0; i < 2_000_000; i++) {
                float x = Float.intBitsToFloat(rnd.nextInt());
                assertEquals(search(code, signed, x), table(signed, x));
            }
        }
    }

    @Test
    void shouldMatchBruteForceOnMidpointsNeighboursAndRandomValues() {
        SplittableRandom rnd = new SplittableRandom(7);
        for (boolean signed : new boolean[] {true, false}) {
            float[] code = signed ? QuantMap.SIGNED : QuantMap.UNSIGNED;
            for (int i = 1; i < 256; i++) {
                float mid = (code[i - 1] + code[i]) * 0.5f;
                for (float x : new float[] {mid, Math.nextUp(mid), Math.nextDown(mid), code[i], code[i - 1]}) {
                    check(code, signed, x);
                }
            }
            for (float x : new float[] {0f, -0f, 1f, -1f, 2f, -2f, Float.MIN_VALUE, -Float.MIN_VALUE,
                    Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.NaN}) {
                check(code, signed, x);
            }
            for (int k = 0; k < 200_000; k++) {
                float x = (float) (rnd.nextDouble(-1.05, 1.05) * Math.pow(10, -rnd.nextInt(8)));
                check(code, signed, x);
            }
        }
    }

    @Test
    void shouldMapNanToZeroAndFixSigns() {
        assertEquals(0, QuantMap.quantize(QuantMap.SIGNED, Float.NaN, true));
        // all-zero block: 0/0 = NaN -> code 0 (-0.99) -> sign fix -> 0 - 1 wraps to 255
        assertEquals(255, QuantMap.quantizeSigned(0f, 0f));
        assertEquals(0, QuantMap.quantizeSigned(-0f, 0f)); // -0.0 keeps code 0: its sign matches
        assertEquals(1, QuantMap.quantizeSigned(Float.POSITIVE_INFINITY, Float.POSITIVE_INFINITY));
        // a tiny negative m must not become +0.0 (code 127): the sign fix moves it to 126
        assertEquals(126, QuantMap.quantizeSigned(-1e-9f, 1f));
        assertEquals(127, QuantMap.quantizeSigned(1e-9f, 1f));
        assertEquals(255, QuantMap.quantizeSigned(3f, 3f));
        assertEquals(0, QuantMap.quantizeSigned(-3f, 3f));
    }
}
