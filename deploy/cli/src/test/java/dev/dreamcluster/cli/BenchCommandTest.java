package dev.dreamcluster.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The benchmarks start real child processes and print their columns; their flags are checked. */
class BenchCommandTest {
    @Test
    void shouldMeasureTheRingBetweenProcesses() {
        Cli r = Cli.run("bench", "collective", "--workers", "2", "--bytes", "4MiB", "--iters", "1", "--frame", "64KiB", "--rounds", "2");
        assertEquals(0, r.status(), r.err());
        for (String s : new String[] {"all-reduce", "reduce-scatter", "all-gather", "raw TCP", "busbw", "frames of 64 KiB",
                "where rank 0's time went", "target busbw"}) {
            assertTrue(r.out().contains(s), r.out());
        }
        Cli.run("bench", "collective", "--bytes", "3").assertUsageError("--bytes", "multiple of 4");
        Cli.run("bench", "collective", "--frame", "1KiB").assertUsageError("--frame", "4KiB..64MiB");
        Cli.run("bench", "collective", "--rounds", "0").assertUsageError("--rounds", "1..100");
    }

    @Test
    void stepBenchShouldTrainAndPrintTheSplit() {
        Cli r = Cli.run("bench", "step", "--preset", "tiny", "--workers", "1", "--steps", "2", "--warmup", "1");
        assertEquals(0, r.status(), r.err());
        for (String s : new String[] {"step benchmark: tiny preset", "samples/s", "compute (ms)", "comm share", "1.00x"}) {
            assertTrue(r.out().contains(s), r.out());
        }
        Cli.run("bench", "step", "--preset", "huge").assertUsageError("--preset", "\"huge\"", "tiny or medium");
        Cli.run("bench", "step", "--workers", "3").assertUsageError("--workers", "3", "divide --batch 4");
        Cli.run("bench", "step", "--optimizer", "sgd").assertUsageError("--optimizer", "\"sgd\"");
    }
}
