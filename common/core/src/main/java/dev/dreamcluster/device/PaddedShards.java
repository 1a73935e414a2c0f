package dev.dreamcluster.device;

/**
 * ZeRO's uneven shards laid out for NCCL, whose reduce-scatter and all-gather give every rank the
 * same count. Rank r's segment [bounds[r], bounds[r+1]) of the flat buffer moves to
 * [r * count, r * count + len_r) of a padded buffer of world * count elements; the tail of each
 * padded segment is zero (sums of zeros stay zero, and nothing reads it back).
 *
 * <pre>
 *   flat    [ r0 (5) | r1 (3) | r2 (4) ]                      bounds {0, 5, 8, 12}
 *   padded  [ r0 (5) . . . | r1 (3) . . . . . | r2 (4) . . . . ]   count 8 (5 rounded up to 8-element multiples)
 * </pre>
 *
 * {@code count} is the longest segment rounded up to {@code align} elements (64 floats = 256 bytes:
 * NCCL's kernels run fastest on aligned chunks). Cost: (world * count - total) padding elements,
 * at most world * (align - 1) + the shard imbalance; ShardPlanner keeps the imbalance small.
 */
public final class PaddedShards {
    public static final int ALIGN = 64;
    private final int[] bounds;
    private final long count;

    public PaddedShards(int[] bounds, int align) {
        if (bounds.length < 2 || bounds[0] != 0 || align < 1) {
            throw new IllegalArgumentException("bounds must start at 0 and name at least one rank; align >= 1");
        }
        long max = 0;
        for (int r = 0; r + 1 < bounds.length; r++) {
            int len = bounds[r + 1] - bounds[r];
            if (len < 0) {
                throw new IllegalArgumentException("bounds must ascend: " + bounds[r] + " then " + bounds[r + 1]);
            }
            max = Math.max(max, len);
        }
        this.bounds = bounds.clone();
        this.count = Math.max(align, (max + align - 1) / align * align);
    }

    public PaddedShards(int[] bounds) {
        this(bounds, ALIGN);
    }

    public int world() {
        return bounds.length - 1;
    }

    /** Elements per rank in every NCCL call (the same on every rank). */
    public long count() {
        return count;
    }

    /** Elements of the padded buffer: world * count. */
    public long paddedLength() {
        return count * world();
    }

    /** Where rank r's segment starts in the padded buffer. */
    public long paddedOffset(int r) {
        return count * r;
    }

    /** Real (unpadded) length of rank r's segment. */
    public int length(int r) {
        return bounds[r + 1] - bounds[r];
    }

    public int flatOffset(int r) {
        return bounds[r];
    }

    /** flat (bounds layout) into padded (zeroed tails). {@code padded} holds at least paddedLength() elements. */
    public void pad(float[] flat, float[] padded) {
        for (int r = 0; r < world(); r++) {
            int off = (int) paddedOffset(r);
            System.arraycopy(flat, bounds[r], padded, off, length(r));
            java.util.Arrays.fill(padded, off + length(r), (int) (off + count), 0f);
        }
    }

    /** Every rank's segment of padded back into flat. */
    public void unpad(float[] padded, float[] flat) {
        for (int r = 0; r < world(); r++) {
            unpadSegment(padded, flat, r);
        }
    }

    /** Rank r's segment of padded back into flat. */
    public void unpadSegment(float[] padded, float[] flat, int r) {
        System.arraycopy(padded, (int) paddedOffset(r), flat, bounds[r], length(r));
    }
}
