package dev.dreamcluster.optim.kernel;

import static dev.dreamcluster.stats.Stats.median;

import java.util.function.IntConsumer;

/**
 * Where an 8-bit optimizer step's time goes, for {@code bin/bench optim}: the vector kernels' three
 * phases timed one at a time over a whole tensor, block by block, with the same calls
 * {@link Blockwise8bitKernel} makes within each block: dequantize (the code maps), update (moments,
 * block maxima, parameters) and quantize (division by the new absmax and the search-table gathers).
 * The update alone is the step with the table steps removed, the floor the 8-bit kernels are measured
 * against. Phase-major order (every block's dequantization, then every block's update, then every
 * block's quantization) keeps each phase's loop apart; the quantize phase re-quantizes the scratch
 * the last update left, so its codes are realistic but not the step's (timing only: nothing here is a
 * result). One thread; the arrays are the caller's copies.
 */
public final class KernelProfile {
    private static final int B = QuantMap.BLOCK;

    /** Nanoseconds per parameter, medians over the repetitions; dequantize is NaN where it is fused into the update (maps gathered). */
    public record Phases(double dequantizeNs, double updateNs, double quantizeNs) {
        public double sumNs() {
            return (Double.isNaN(dequantizeNs) ? 0 : dequantizeNs) + updateNs + quantizeNs;
        }
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
        });
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
        return time(blocks, reps, planes ? b -> VectorKernels.dequantize(c1, b * B, s1, B, QuantMap.SIGNED_PLANES, QuantMap.SIGNED) : null,
                b -> am1[b] = planes ? VectorKernels.lion8BlockValues(p, b * B, g, b * B, s1, B, am1[b], s)
                        : VectorKernels.lion8Block(p, b * B, g, b * B, c1, b * B, s1, idx, B, am1[b], s),
                b -> VectorKernels.quantize(s1, am1[b], c1, b * B, idx, B, true));
    }

    /**
     * Each phase over every block in turn, {@code reps} times; medians in ns per parameter. A null
     * dequantize is a phase fused into the update (maps gathered): NaN.
     */
    private static Phases time(int blocks, int reps, IntConsumer dequantize, IntConsumer update, IntConsumer quantize) {
        final double n = (double) blocks * B;
        final double[][] ns = new double[3][reps];
        for (int r = 0; r < reps; r++) {
            long t0 = System.nanoTime();
            for (int b = 0; dequantize != null && b < blocks; b++) {
                dequantize.accept(b);
            }
            long t1 = System.nanoTime();
            for (int b = 0; b < blocks; b++) {
                update.accept(b);
            }
            long t2 = System.nanoTime();
            for (int b = 0; b < blocks; b++) {
                quantize.accept(b);
            }
            long t3 = System.nanoTime();
            ns[0][r] = dequantize != null ? (t1 - t0) / n : Double.NaN;
            ns[1][r] = (t2 - t1) / n;
            ns[2][r] = (t3 - t2) / n;
        }
        return new Phases(median(ns[0]), median(ns[1]), median(ns[2]));
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
