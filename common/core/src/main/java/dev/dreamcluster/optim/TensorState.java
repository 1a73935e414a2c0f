package dev.dreamcluster.optim;

import dev.dreamcluster.config.OptimizerName;

/**
 * Optimizer state of one {@link TensorSlice}. Which arrays exist depends on the {@link Kind}:
 *
 * <pre>
 *   FP32_2  m[length], v[length]                       adamw; adamw8bit on tensors under 4096
 *   FP32_1  m[length]                                  lion;  lion8bit  on tensors under 4096
 *   Q8_2    c1[length], c2[length], absmax1[blocks], absmax2[blocks]     adamw8bit
 *   Q8_1    c1[length], absmax1[blocks]                                   lion8bit
 * </pre>
 *
 * 8-bit codes start at 0 (not the code of 0.0) and absmax at 0, as bitsandbytes initialises them.
 */
public final class TensorState {
    /** Minimum tensor size for 8-bit state (bitsandbytes' min_8bit_size); decided on the whole tensor. */
    public static final int MIN_8BIT_SIZE = 4096;

    public enum Kind {
        FP32_2,
        FP32_1,
        Q8_2,
        Q8_1
    }

    public final TensorSlice slice;
    public final Kind kind;
    public final float[] m;
    public final float[] v;
    public final byte[] c1;
    public final byte[] c2;
    public final float[] absmax1;
    public final float[] absmax2;

    public TensorState(TensorSlice slice, Kind kind, float[] m, float[] v, byte[] c1, byte[] c2, float[] absmax1,
            float[] absmax2) {
        this.slice = slice;
        this.kind = kind;
        this.m = m;
        this.v = v;
        this.c1 = c1;
        this.c2 = c2;
        this.absmax1 = absmax1;
        this.absmax2 = absmax2;
        int n = slice.length();
        int b = slice.blocks();
        boolean ok = switch (kind) {
            case FP32_2 -> len(m) == n && len(v) == n && c1 == null && c2 == null && absmax1 == null && absmax2 == null;
            case FP32_1 -> len(m) == n && v == null && c1 == null && c2 == null && absmax1 == null && absmax2 == null;
            case Q8_2 -> m == null && v == null && len(c1) == n && len(c2) == n && len(absmax1) == b && len(absmax2) == b;
            case Q8_1 -> m == null && v == null && len(c1) == n && c2 == null && len(absmax1) == b && absmax2 == null;
        };
        if (!ok) {
            throw new IllegalArgumentException(slice.name() + ": arrays do not match state kind " + kind
                    + " for a slice of " + n);
        }
    }

    private static int len(float[] a) {
        return a == null ? -1 : a.length;
    }

    private static int len(byte[] a) {
        return a == null ? -1 : a.length;
    }

    /** The state kind an optimizer keeps for a tensor of {@code numel} elements. */
    public static Kind kindFor(OptimizerName name, long numel) {
        boolean q8 = name.is8bit() && numel >= MIN_8BIT_SIZE;
        return name.isLion() ? (q8 ? Kind.Q8_1 : Kind.FP32_1) : (q8 ? Kind.Q8_2 : Kind.FP32_2);
    }

    /** Fresh (step 0) state. */
    public static TensorState zeros(TensorSlice slice, Kind kind) {
        int n = slice.length();
        int b = slice.blocks();
        return switch (kind) {
            case FP32_2 -> new TensorState(slice, kind, new float[n], new float[n], null, null, null, null);
            case FP32_1 -> new TensorState(slice, kind, new float[n], null, null, null, null, null);
            case Q8_2 -> new TensorState(slice, kind, null, null, new byte[n], new byte[n], new float[b], new float[b]);
            case Q8_1 -> new TensorState(slice, kind, null, null, new byte[n], null, new float[b], null);
        };
    }

    /** Bytes of state held: what the optimizer costs in memory for this slice. */
    public long bytes() {
        long n = 0;
        for (float[] a : new float[][] {m, v, absmax1, absmax2}) {
            n += a == null ? 0 : 4L * a.length;
        }
        for (byte[] a : new byte[][] {c1, c2}) {
            n += a == null ? 0 : a.length;
        }
        return n;
    }
}
