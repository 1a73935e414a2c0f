package dev.dreamcluster.worker.train.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dreamcluster.config.ConfigError;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** The cut of a global micro-batch between ranks: even cuts as before, proportional cuts by largest remainder. */
class BatchSplitTest {
    @Test
    void evenCutsShouldBeTheCutsOfBefore() {
        BatchSplit s = BatchSplit.equal(8, 2);
        assertArrayEquals(new int[] {4, 4}, s.counts());
        assertTrue(s.even());
        assertEquals(4, s.lo(1));
        assertEquals(1f, s.weight(1));
        BatchSplit three = BatchSplit.equal(4, 3); // r * 4 / 3: [0, 1), [1, 2), [2, 4)
        assertArrayEquals(new int[] {1, 1, 2}, three.counts());
        assertEquals(0.75f, three.weight(0));
        assertEquals(1.5f, three.weight(2));
    }

    @Test
    void proportionalCutsShouldFollowTheCapacities() {
        assertArrayEquals(new int[] {1, 3}, BatchSplit.proportional(4, new double[] {1, 2}).counts());
        assertArrayEquals(new int[] {2, 4}, BatchSplit.proportional(6, new double[] {1, 2}).counts());
        assertArrayEquals(new int[] {1, 1, 6}, BatchSplit.proportional(8, new double[] {0.01, 0.01, 10}).counts()); // at least one each
        SplittableRandom r = new SplittableRandom(5);
        for (int k = 0; k < 1000; k++) {
            int world = r.nextInt(1, 9);
            int batch = r.nextInt(world, 65);
            double[] c = new double[world];
            double total = 0;
            for (int i = 0; i < world; i++) {
                c[i] = r.nextDouble(0.1, 10);
                total += c[i];
            }
            BatchSplit s = BatchSplit.proportional(batch, c);
            assertEquals(batch, s.batch());
            double weightSum = 0;
            int raised = 0; // ranks whose ideal share is below one image: each takes one image from the largest
            for (int i = 0; i < world; i++) {
                raised += batch * c[i] / total < 1 ? 1 : 0;
            }
            for (int i = 0; i < world; i++) {
                assertTrue(s.counts()[i] >= 1);
                assertTrue(Math.abs(s.counts()[i] - batch * c[i] / total) < 1 + raised, s + " for " + java.util.Arrays.toString(c));
                weightSum += s.weight(i);
            }
            assertEquals(world, weightSum, 1e-4, "the weights average to 1: the global mean");
        }
    }

    @Test
    void aBatchSmallerThanTheWorkerCountShouldBeRefused() {
        ConfigError e = assertThrows(ConfigError.class, () -> BatchSplit.equal(2, 3));
        assertTrue(e.getMessage().startsWith("batch_size: 2 is not allowed with 3 workers"), e.getMessage());
    }
}
