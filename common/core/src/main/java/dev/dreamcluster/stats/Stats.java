package dev.dreamcluster.stats;

import java.util.Arrays;

/** Medians for timings: robust to a slow warm-up step or round, which a mean is not. */
public final class Stats {
    private Stats() {}

    /** The median of {@code x} (the mean of the two middle values for an even count); NaN for none. Sorts a copy. */
    public static double median(double[] x) {
        if (x.length == 0) {
            return Double.NaN;
        }
        double[] s = x.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }
}
