package dev.dreamcluster.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** bench collective starts real child processes and prints the nccl-tests columns. */
class BenchCommandTest {
    @Test
    void shouldMeasureTheRingBetweenProcesses() {
        Cli r = Cli.run("bench", "collective", "--workers", "2", "--bytes", "4MiB", "--iters", "1");
        assertEquals(0, r.status(), r.err());
        for (String s : new String[] {"all-reduce", "reduce-scatter", "all-gather", "raw TCP", "busbw"}) {
            assertTrue(r.out().contains(s), r.out());
        }
        Cli.run("bench", "collective", "--bytes", "3").assertUsageError("--bytes", "multiple of 4");
    }
}
