package dev.dreamcluster.optim.kernel;

import static dev.dreamcluster.stats.Stats.median;

import java.util.function.IntConsumer;

/**
 * Where an 8-bit optimizer step's time goes, for {@code bin/bench optim}: the vector kernels' three
 * phases timed one at a time over a whole tensor, block by block, with the same calls
 * {@link Blockwise8bitKernel} makes within each block: dequantize (the code maps), update (moments,
 * block maxima, parameters) and quantize (division by the new absmax and the search-table gathers).
 * The update alone is the step with the table steps removed. Phase-major order (every block's
 * dequantization, then every block's update, then every block's quantization) keeps each phase's
 * loop apart; the quantize phase re-quantizes the scratch the last update left, so its codes are
 * realistic but not the step's (timing only: nothing here is a result). One thread; the arrays are
 * the caller's copies.
 *
 * <p>The table gathers alone are the quantize phase's floor as designed: one gather per state element
 * from the search table, at the keys of real states (the values of the step's own codes, a 16-block
 * window that stays in L1), with the division, compare, narrowing and store removed. Dequantize +
 * update + gathers is then the fastest this table design can run on the machine at hand, whatever
 * else is tuned. Each repetition also times the whole 8-bit step ({@link Blockwise8bitKernel}) and
 * fp32 AdamW's step ({@link AdamWKernel}) on the same tensor, so the ratios between them and the floor
 * are formed within one repetition, not across minutes of a noisy machine.
 */
public final class KernelProfile {
    private static final int B = QuantMap.BLOCK;
    /** Blocks of keys the gathers-alone figure cycles through: 16 KiB of int keys, L1-resident. */
    private static final int KEY_BLOCKS = 16;

    /**
     * Nanoseconds per parameter, medians over the repetitions; dequantize is NaN where it is fused
     * into the update (maps gathered). {@code gathersNs}: the quantize phase's table gathers alone (one
     * per state element: two per parameter for AdamW8bit, one for Lion8bit). {@code wholeNs}: the
     * kernel's whole step; {@code adamwNs}: fp32 AdamW's. The two ratios are formed within each
     * repetition, one value per repetition: the whole step's time over the floor's, and fp32 AdamW's
     * time over the floor's (the most the table design could reach against fp32 AdamW).
     */
    public record Phases(double dequantizeNs, double updateNs, double quantizeNs, double gathersNs, double wholeNs, double adamwNs,
            double[] wholeOverFloor, double[] floorVsAdamw) {
        public double sumNs() {
            return orZero(dequantizeNs) + updateNs + quantizeNs;
        }

        /** The table design's floor: dequantize + update + the quantizer's gathers alone. */
        public double floorNs() {
            return orZero(dequantizeNs) + updateNs + gathersNs;
        }
    }

    private static double orZero(double ns) {
        return Double.isNaN(ns) ? 0 : ns;
    }

    private KernelProfile() {}

    /**
     * AdamW8bit's phases over {@code p} and {@code g} (whole 256-blocks: {@code p.length} a multiple of
     * 256). Two untimed real steps first give the codes and scales a trained state's spread.
     */
    public static Phases adam8(float[] p, float[] g, int reps) {
        requireVectors(p);
        final int n = p.length;
        final int blocks = n / B;
        final byte[] c1 = new byte[n];
        final byte[] c2 = new byte[n];
        final float[] am1 = new float[blocks];
        final float[] am2 = new float[blocks];
        final float[] s1 = new float[B];
        final float[] s2 = new float[B];
        final float[] s3 = new float[B];
        final int[] idx = new int[B];
        for (int t = 1; t <= 2; t++) {
            Blockwise8bitKernel.adam(p, 0, g, 0, c1, c2, 0, am1, am2, 0, n, 0, blocks, BnbScalars.of(1e-4, 0.9, 0.999, 1e-8, 0.01, t),
                    s1, s2, s3, idx);
        }
        final BnbScalars s = BnbScalars.of(1e-4, 0.9, 0.999, 1e-8, 0.01, 3);
        final boolean planes = Simd.BYTE_PERMUTE;
        final int window = keyBlocks(blocks);
        final int[] keys1 = keys(c1, QuantMap.SIGNED, window);
        final int[] keys2 = keys(c2, QuantMap.UNSIGNED, window);
        final int[] sink = new int[1];
        return time(blocks, reps, planes ? b -> {
            VectorKernels.dequantize(c1, b * B, s1, B, QuantMap.SIGNED_PLANES, QuantMap.SIGNED);
            VectorKernels.dequantize(c2, b * B, s2, B, QuantMap.UNSIGNED_PLANES, QuantMap.UNSIGNED);
        } : null, b -> {
            long maxima = planes ? VectorKernels.adam8BlockValues(p, b * B, g, b * B, s1, s2, B, am1[b], am2[b], s)
                    : VectorKernels.adam8Block(p, b * B, g, b * B, c1, c2, b * B, s1, s2, idx, B, am1[b], am2[b], s);
            am1[b] = Float.intBitsToFloat((int) (maxima >>> 32));
            am2[b] = Float.intBitsToFloat((int) maxima);
        }, b -> {
            VectorKernels.quantize(s1, am1[b], c1, b * B, idx, B, true);
            VectorKernels.quantize(s2, am2[b], c2, b * B, idx, B, false);
        }, b -> {
            final int off = (b % window) * B;
            sink[0] += VectorKernels.gatherSum(QuantMap.SIGNED_LUT_INT, keys1, off, B)
                    + VectorKernels.gatherSum(QuantMap.UNSIGNED_LUT_INT, keys2, off, B);
        }, () -> Blockwise8bitKernel.adam(p, 0, g, 0, c1, c2, 0, am1, am2, 0, n, 0, blocks, s, s1, s2, s3, idx), p, g);
    }

    /** Lion8bit's phases, as {@link #adam8}. */
    public static Phases lion8(float[] p, float[] g, int reps) {
        requireVectors(p);
        final int n = p.length;
        final int blocks = n / B;
        final byte[] c1 = new byte[n];
        final float[] am1 = new float[blocks];
        final float[] s1 = new float[B];
        final float[] s2 = new float[B];
        final int[] idx = new int[B];
        for (int t = 1; t <= 2; t++) {
            Blockwise8bitKernel.lion(p, 0, g, 0, c1, 0, am1, 0, n, 0, blocks, BnbScalars.of(1e-4, 0.9, 0.99, 0.0, 0.01, t), s1, s2, idx);
        }
        final BnbScalars s = BnbScalars.of(1e-4, 0.9, 0.99, 0.0, 0.01, 3);
        final boolean planes = Simd.BYTE_PERMUTE;
        final int window = keyBlocks(blocks);
        final int[] keys1 = keys(c1, QuantMap.SIGNED, window);
        final int[] sink = new int[1];
        return time(blocks, reps, planes ? b -> VectorKernels.dequantize(c1, b * B, s1, B, QuantMap.SIGNED_PLANES, QuantMap.SIGNED) : null,
                b -> am1[b] = planes ? VectorKernels.lion8BlockValues(p, b * B, g, b * B, s1, B, am1[b], s)
                        : VectorKernels.lion8Block(p, b * B, g, b * B, c1, b * B, s1, idx, B, am1[b], s),
                b -> VectorKernels.quantize(s1, am1[b], c1, b * B, idx, B, true),
                b -> sink[0] += VectorKernels.gatherSum(QuantMap.SIGNED_LUT_INT, keys1, (b % window) * B, B),
                () -> Blockwise8bitKernel.lion(p, 0, g, 0, c1, 0, am1, 0, n, 0, blocks, s, s1, s2, idx), p, g);
    }

    private static int keyBlocks(int blocks) {
        return Math.min(KEY_BLOCKS, blocks);
    }

    /**
     * Search-table keys (top 16 float bits) of the values the first {@code window} blocks' codes stand for: the
     * ratios a step re-quantizes lie next to these values, so the keys hit the table where a real
     * step does.
     */
    private static int[] keys(byte[] codes, float[] map, int window) {
        final int[] keys = new int[window * B];
        for (int i = 0; i < keys.length; i++) {
            keys[i] = Float.floatToRawIntBits(map[codes[i] & 0xFF]) >>> 16;
        }
        return keys;
    }

    /**
     * Each phase over every block in turn, then the gathers alone, the whole step and fp32 AdamW's step
     * on a copy of {@code p} (its own m and v), {@code reps} times after one untimed repetition (the
     * gathers-alone loop and fp32 AdamW compile there); medians in ns per parameter. A null dequantize
     * is a phase fused into the update (maps gathered): NaN.
     */
    private static Phases time(int blocks, int reps, IntConsumer dequantize, IntConsumer update, IntConsumer quantize,
            IntConsumer gathers, Runnable whole, float[] p, float[] g) {
        final int n = blocks * B;
        final float[] ap = p.clone();
        final float[] am = new float[n];
        final float[] av = new float[n];
        final AdamWKernel.Scalars as = AdamWKernel.Scalars.of(1e-4, 0.9, 0.999, 1e-8, 0.01, 3);
        final double[][] ns = new double[6][reps];
        final double[] wholeOverFloor = new double[reps];
        final double[] floorVsAdamw = new double[reps];
        for (int r = -1; r < reps; r++) {
            final long t0 = System.nanoTime();
            for (int b = 0; dequantize != null && b < blocks; b++) {
                dequantize.accept(b);
            }
            final long t1 = System.nanoTime();
            for (int b = 0; b < blocks; b++) {
                update.accept(b);
            }
            final long t2 = System.nanoTime();
            for (int b = 0; b < blocks; b++) {
                quantize.accept(b);
            }
            final long t3 = System.nanoTime();
            for (int b = 0; b < blocks; b++) {
                gathers.accept(b);
            }
            final long t4 = System.nanoTime();
            whole.run();
            final long t5 = System.nanoTime();
            AdamWKernel.step(ap, 0, g, 0, am, av, 0, n, as);
            final long t6 = System.nanoTime();
            if (r < 0) {
                continue; // the warm-up
            }
            ns[0][r] = dequantize != null ? (t1 - t0) / (double) n : Double.NaN;
            ns[1][r] = (t2 - t1) / (double) n;
            ns[2][r] = (t3 - t2) / (double) n;
            ns[3][r] = (t4 - t3) / (double) n;
            ns[4][r] = (t5 - t4) / (double) n;
            ns[5][r] = (t6 - t5) / (double) n;
            final double floor = orZero(ns[0][r]) + ns[1][r] + ns[3][r];
            wholeOverFloor[r] = ns[4][r] / floor;
            floorVsAdamw[r] = ns[5][r] / floor;
        }
        return new Phases(median(ns[0]), median(ns[1]), median(ns[2]), median(ns[3]), median(ns[4]), median(ns[5]),
                wholeOverFloor, floorVsAdamw);
    }

    private static void requireVectors(float[] p) {
        if (!Simd.ENABLED) {
            throw new IllegalStateException("the phases are the vector kernels': start the JVM with " + Simd.JVM_FLAG);
        }
        if (p.length == 0 || p.length % B != 0) {
            throw new IllegalArgumentException("a whole number of 256-blocks is needed, not " + p.length + " elements");
        }
    }
}
