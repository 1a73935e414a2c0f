package dev.dreamcluster.worker.train.data;

import dev.dreamcluster.config.ConfigError;
import java.util.Arrays;

/**
 * How each global micro-batch is cut between the ranks: rank r takes images [lo(r), hi(r)) of it
 * (the batch itself, its order, buckets and every random draw stay defined by the global batch). An
 * equal cut is the default; a proportional one gives faster ranks more images (mixed GPUs, a slow
 * node). Every rank's gradient is the mean over its own images, so rank r's loss is weighted by
 * {@code counts[r] * world / batch} before backward: after the reduce-scatter's sum and the division
 * by world, the update is the mean over the global batch whatever the cut (the float sums differ with
 * the cut, the arithmetic does not).
 */
public record BatchSplit(int[] counts) {
    public BatchSplit {
        counts = counts.clone();
        for (int c : counts) {
            if (c < 1) {
                throw new IllegalArgumentException("every rank needs at least one image per micro-batch: " + Arrays.toString(counts));
            }
        }
    }

    /** As equal as whole images allow: rank r takes [r * batch / world, (r + 1) * batch / world), the cut of an even split. */
    public static BatchSplit equal(int batch, int world) {
        check(batch, world);
        int[] c = new int[world];
        for (int r = 0; r < world; r++) {
            c[r] = (r + 1) * batch / world - r * batch / world;
        }
        return new BatchSplit(c);
    }

    /**
     * In proportion to {@code capacity} (images per second, or any relative speed), by largest
     * remainder (batch 4 at capacities 1 and 2: 1 and 3), at least one image each. Deterministic: every rank computes the same cut from the
     * same (all-reduced) capacities.
     */
    public static BatchSplit proportional(int batch, double[] capacity) {
        check(batch, capacity.length);
        int world = capacity.length;
        double total = 0;
        for (double c : capacity) {
            if (!(c > 0) || !Double.isFinite(c)) {
                throw new IllegalArgumentException("capacities must be finite and > 0: " + Arrays.toString(capacity));
            }
            total += c;
        }
        int[] counts = new int[world];
        double[] remainder = new double[world];
        int given = 0;
        for (int r = 0; r < world; r++) { // the ideal share, rounded down; the largest remainders take what is left
            double ideal = batch * capacity[r] / total;
            counts[r] = (int) Math.floor(ideal);
            remainder[r] = ideal - counts[r];
            given += counts[r];
        }
        while (given < batch) { // ties go to the lower rank
            int best = 0;
            for (int r = 1; r < world; r++) {
                if (remainder[r] > remainder[best]) {
                    best = r;
                }
            }
            counts[best]++;
            remainder[best] = -1;
            given++;
        }
        for (int r = 0; r < world; r++) { // every rank takes part: one image from the rank with the most
            if (counts[r] == 0) {
                int most = 0;
                for (int q = 1; q < world; q++) {
                    if (counts[q] > counts[most]) {
                        most = q;
                    }
                }
                counts[most]--;
                counts[r] = 1;
            }
        }
        return new BatchSplit(counts);
    }

    private static void check(int batch, int world) {
        if (batch < world) {
            throw new ConfigError("batch_size: " + batch + " is not allowed with " + world + " workers (allowed: at least one image per "
                    + "worker, batch_size >= " + world + ")");
        }
    }

    public int world() {
        return counts.length;
    }

    public int batch() {
        return Arrays.stream(counts).sum();
    }

    public int lo(int rank) {
        int lo = 0;
        for (int r = 0; r < rank; r++) {
            lo += counts[r];
        }
        return lo;
    }

    public int hi(int rank) {
        return lo(rank) + counts[rank];
    }

    /** Rank {@code rank}'s loss weight: 1 for every rank of an even cut. */
    public float weight(int rank) {
        return (float) ((double) counts[rank] * world() / batch());
    }

    /** True when every rank's weight is 1 (no multiply needed: the even cuts of before, bit for bit). */
    public boolean even() {
        return Arrays.stream(counts).allMatch(c -> c == counts[0]);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof BatchSplit b && Arrays.equals(counts, b.counts);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(counts);
    }

    @Override
    public String toString() {
        return Arrays.toString(counts);
    }
}
