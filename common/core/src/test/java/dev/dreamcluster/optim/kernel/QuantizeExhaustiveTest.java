package dev.dreamcluster.optim.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Every float32 bit pattern, both maps: the quantizers the kernels use (the 64-bit search table of the
 * scalar kernels, {@link QuantMap#quantizeSignedRatio} / {@link QuantMap#quantizeUnsigned}; the 32-bit
 * table the vector kernels gather from, {@link QuantMap#lookupInt}; and the vector re-quantization
 * itself, {@link VectorKernels#quantize} with absmax 1) against bitsandbytes' own search: the 7-step
 * binary search over the 256-entry map ({@link QuantMap#quantize}, {@code quantize_2D}) followed by the
 * optimizer's sign fix. All 2^32 patterns, so nothing rests on an argument about which patterns
 * matter (NaN payloads, both zeros, subnormals, |x| > 1 and the infinities included).
 *
 * <p>Cost: 2 x 2^32 binary searches plus the candidates, split over the cores in 2^24-pattern
 * chunks; about 40-60 s of CPU per core on the 2-core Zen 5 VM when it is idle.
 */
class QuantizeExhaustiveTest {
    private static final int CHUNK = 1 << 24;

    /** bitsandbytes: search, then (signed map) one code toward the value's sign; NaN counts as positive. */
    static int reference(float[] code, boolean signed, float x) {
        int c = QuantMap.quantize(code, x, signed);
        if (signed) {
            boolean negative = Float.floatToRawIntBits(x) < 0 && x == x;
            if ((Float.floatToRawIntBits(code[c]) < 0) != negative) {
                c = (c + (x > 0 ? 1 : -1)) & 0xFF;
            }
        }
        return c;
    }

    @Test
    void everyFloatPatternShouldQuantizeAsBitsandbytesSearch() throws Exception {
        int threads = Math.max(1, Runtime.getRuntime().availableProcessors());
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        AtomicReference<String> firstMismatch = new AtomicReference<>();
        AtomicLong checked = new AtomicLong();
        long t0 = System.nanoTime();
        try {
            List<Future<?>> done = new ArrayList<>();
            for (long from = 0; from < (1L << 32); from += CHUNK) {
                final long start = from;
                done.add(pool.submit(() -> checkChunk((int) start, firstMismatch, checked)));
            }
            for (Future<?> f : done) {
                f.get();
            }
        } finally {
            pool.shutdownNow();
        }
        System.out.printf("QuantizeExhaustiveTest: %d patterns x 2 maps in %.1f s on %d threads (vector quantizer %s)%n",
                checked.get(), (System.nanoTime() - t0) / 1e9, threads, Simd.ENABLED ? "checked" : "skipped: no vector module");
        assertEquals(null, firstMismatch.get());
        assertEquals(1L << 32, checked.get());
    }

    private static void checkChunk(int start, AtomicReference<String> firstMismatch, AtomicLong checked) {
        float[] block = new float[QuantMap.BLOCK];
        byte[] codes = new byte[QuantMap.BLOCK];
        int[] idx = new int[QuantMap.BLOCK];
        for (int base = start; base != start + CHUNK; base += QuantMap.BLOCK) {
            if (firstMismatch.get() != null) {
                return;
            }
            for (int j = 0; j < QuantMap.BLOCK; j++) {
                block[j] = Float.intBitsToFloat(base + j);
            }
            for (int m = 0; m < 2; m++) {
                boolean signed = m == 1;
                float[] code = signed ? QuantMap.SIGNED : QuantMap.UNSIGNED;
                if (Simd.ENABLED) {
                    VectorKernels.quantize(block, 1f, codes, 0, idx, QuantMap.BLOCK, signed);
                }
                for (int j = 0; j < QuantMap.BLOCK; j++) {
                    float x = block[j];
                    int want = reference(code, signed, x);
                    int table = signed ? QuantMap.quantizeSignedRatio(x, x) : QuantMap.quantizeUnsigned(x);
                    int intTable = QuantMap.lookupInt(signed, x);
                    int vector = Simd.ENABLED ? codes[j] & 0xFF : want;
                    if (table != want || intTable != want || vector != want) {
                        firstMismatch.compareAndSet(null, String.format(
                                "%s map, x = %s (bits %08x): search %d, table %d, int table %d, vector %d",
                                signed ? "signed" : "unsigned", x, base + j, want, table, intTable, vector));
                        return;
                    }
                }
            }
        }
        checked.addAndGet(CHUNK);
    }
}
