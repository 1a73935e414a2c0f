package dev.dreamcluster.stats;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class StatsTest {
    @Test
    void theMedianShouldBeTheMiddleValueOrTheMeanOfTheTwoAndLeaveItsInputAlone() {
        double[] odd = {5, 1, 3};
        assertEquals(3, Stats.median(odd));
        assertArrayEquals(new double[] {5, 1, 3}, odd, "the input is not sorted in place");
        assertEquals(2.5, Stats.median(new double[] {4, 1, 3, 2}));
        assertEquals(7, Stats.median(new double[] {7}));
        assertEquals(Double.NaN, Stats.median(new double[0]));
    }
}
