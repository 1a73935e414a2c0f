package dev.dreamcluster.worker.data;

import java.util.ArrayList;
import java.util.List;

/**
 * Aspect-ratio buckets for a training resolution R (rounded down to a multiple of 64): every
 * (w, h), both multiples of 64, with w*h <= R*R, as wide as that area allows, and aspect between 1:4
 * and 4:1. An image goes to the bucket nearest its aspect ratio (in log space), so batches of one
 * bucket share a shape and need no padding.
 */
public final class AspectBuckets {
    private final List<int[]> buckets = new ArrayList<>();

    public AspectBuckets(int resolution) {
        int r = resolution / 64 * 64;
        if (r < 64) {
            throw new IllegalArgumentException("resolution must be >= 64, got " + resolution);
        }
        long area = (long) r * r;
        for (int w = 64; w <= 4 * r; w += 64) {
            int h = (int) (area / w / 64 * 64);
            if (h >= 64 && Math.max((double) w / h, (double) h / w) <= 4.0) {
                buckets.add(new int[] {w, h});
            }
        }
    }

    /** The bucket (width, height) for an image of that size. */
    public int[] forSize(int width, int height) {
        double target = Math.log((double) width / height);
        int[] best = buckets.get(0);
        double bestD = Double.MAX_VALUE;
        for (int[] b : buckets) {
            double d = Math.abs(Math.log((double) b[0] / b[1]) - target);
            if (d < bestD - 1e-12) {
                bestD = d;
                best = b;
            }
        }
        return best.clone();
    }

    public List<int[]> all() {
        return buckets.stream().map(int[]::clone).toList();
    }
}
