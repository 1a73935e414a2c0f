package dev.dreamcluster.collective;

/**
 * Ring arithmetic. Rank r sends to r+1 and receives from r-1 (mod n).
 *
 * <pre>
 * reduce-scatter, step s = 0..n-2:  send segment (r-s-1), receive segment (r-s-2) and add into it;
 *                                   after n-1 steps rank r holds the full sum of segment r.
 * all-gather,     step s = 0..n-2:  send segment (r-s), receive segment (r-s-1) and overwrite it.
 * </pre>
 *
 * Each rank sends (n-1)/n of the buffer per phase: all-reduce = reduce-scatter + all-gather moves
 * 2(n-1)/n x bytes per rank, the bandwidth-optimal amount. The sum order of a segment is fixed by n,
 * so results are deterministic for a given world size.
 */
public final class RingSchedule {
    private RingSchedule() {}

    public static int mod(int a, int n) {
        int m = a % n;
        return m < 0 ? m + n : m;
    }

    public static int reduceScatterSend(int rank, int step, int n) {
        return mod(rank - step - 1, n);
    }

    public static int reduceScatterRecv(int rank, int step, int n) {
        return mod(rank - step - 2, n);
    }

    public static int allGatherSend(int rank, int step, int n) {
        return mod(rank - step, n);
    }

    public static int allGatherRecv(int rank, int step, int n) {
        return mod(rank - step - 1, n);
    }

    /** Near-equal segments of {@code len} elements for {@code n} ranks (the first len % n get one more). */
    public static int[] evenBounds(int len, int n) {
        int[] b = new int[n + 1];
        for (int r = 0; r < n; r++) {
            b[r + 1] = b[r] + len / n + (r < len % n ? 1 : 0);
        }
        return b;
    }

    /** Checks that {@code bounds} partitions [0, bounds[n]) into n ascending segments within {@code capacity}. */
    public static void check(int[] bounds, int n, int capacity) {
        if (bounds.length != n + 1 || bounds[0] != 0 || bounds[n] > capacity) {
            throw new IllegalArgumentException("bounds must have " + (n + 1) + " entries from 0 to <= " + capacity);
        }
        for (int r = 0; r < n; r++) {
            if (bounds[r + 1] < bounds[r]) {
                throw new IllegalArgumentException("bounds must ascend: " + java.util.Arrays.toString(bounds));
            }
        }
    }
}
