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
        assertEquals(bruteForce(code, x), QuantMap.quantize(code, x, signed), () -> "x = " + x + " (" + Float.floatToRawIntBits(x) + ")");
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
        assertEquals(255, QuantMap.quantizeSigned(QuantMap.SIGNED, 0f, 0f));
        // a tiny negative m must not become +0.0 (code 127): the sign fix moves it to 126
        assertEquals(126, QuantMap.quantizeSigned(QuantMap.SIGNED, -1e-9f, 1f));
        assertEquals(127, QuantMap.quantizeSigned(QuantMap.SIGNED, 1e-9f, 1f));
        assertEquals(255, QuantMap.quantizeSigned(QuantMap.SIGNED, 3f, 3f));
        assertEquals(0, QuantMap.quantizeSigned(QuantMap.SIGNED, -3f, 3f));
    }
}
