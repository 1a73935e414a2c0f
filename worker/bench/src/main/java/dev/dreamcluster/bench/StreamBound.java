package dev.dreamcluster.bench;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Future;

/**
 * The memory-bandwidth bound of each optimizer's access pattern: a streaming loop that reads and
 * writes exactly the arrays the optimizer reads and writes (same element types, same thread split),
 * with one add per array so that it is limited by memory, not arithmetic. No optimizer can move its
 * bytes faster than this loop, so ours / bound is the fraction of the machine's bandwidth it uses.
 *
 * <pre>
 *   pattern     reads               writes         bytes/param
 *   adamw       p g m v  (fp32)     p m v          28
 *   lion        p g m    (fp32)     p m            20
 *   adamw8bit   p g (fp32) c1 c2    p c1 c2        16 (+ 8/256 absmax)
 *   lion8bit    p g (fp32) c1       p c1           14 (+ 4/256 absmax)
 * </pre>
 *
 * The added value is a zero read from a field, so the arrays keep their contents.
 */
final class StreamBound {
    enum Pattern {
        ADAMW(28), LION(20), ADAMW8BIT(16 + 8.0 / 256), LION8BIT(14 + 4.0 / 256);

        final double bytesPerParam;

        Pattern(double bytesPerParam) {
            this.bytesPerParam = bytesPerParam;
        }
    }

    /** Zero, but not a constant the JIT can fold away. */
    static volatile float zero = 0f;

    private final Pattern pattern;
    private final int n;
    private final float[] p;
    private final float[] g;
    private final float[] m;
    private final float[] v;
    private final byte[] c1;
    private final byte[] c2;

    StreamBound(Pattern pattern, int n) {
        this.pattern = pattern;
        this.n = n;
        this.p = new float[n];
        this.g = new float[n];
        boolean fp32 = pattern == Pattern.ADAMW || pattern == Pattern.LION;
        this.m = fp32 ? new float[n] : null;
        this.v = pattern == Pattern.ADAMW ? new float[n] : null;
        this.c1 = fp32 ? null : new byte[n];
        this.c2 = pattern == Pattern.ADAMW8BIT ? new byte[n] : null;
    }

    /** One pass over every element, split into {@code threads} contiguous ranges. */
    void pass(ExecutorService pool, int threads) throws Exception {
        final float z = zero;
        final byte zb = (byte) (int) z;
        if (threads == 1) {
            range(0, n, z, zb);
            return;
        }
        List<Future<?>> fs = new ArrayList<>();
        for (int t = 1; t < threads; t++) {
            int from = (int) ((long) n * t / threads);
            int to = (int) ((long) n * (t + 1) / threads);
            fs.add(pool.submit(() -> range(from, to, z, zb)));
        }
        range(0, (int) ((long) n / threads), z, zb);
        for (Future<?> f : fs) {
            f.get();
        }
    }

    private void range(int from, int to, float z, byte zb) {
        switch (pattern) {
            case ADAMW -> {
                for (int i = from; i < to; i++) {
                    float gi = g[i] * z;
                    p[i] = p[i] + gi;
                    m[i] = m[i] + gi;
                    v[i] = v[i] + gi;
                }
            }
            case LION -> {
                for (int i = from; i < to; i++) {
                    float gi = g[i] * z;
                    p[i] = p[i] + gi;
                    m[i] = m[i] + gi;
                }
            }
            case ADAMW8BIT -> {
                for (int i = from; i < to; i++) {
                    p[i] = p[i] + g[i] * z;
                    c1[i] = (byte) (c1[i] + zb);
                    c2[i] = (byte) (c2[i] + zb);
                }
            }
            case LION8BIT -> {
                for (int i = from; i < to; i++) {
                    p[i] = p[i] + g[i] * z;
                    c1[i] = (byte) (c1[i] + zb);
                }
            }
        }
    }
}
