package dev.dreamcluster.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

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
        for (String s : new String[] {"step benchmark: tiny preset", "samples/s", "compute (ms)", "comm share", "1.00x", "formation (s)",
                "ZeRO-1 state/rank (MB)"}) {
            assertTrue(r.out().contains(s), r.out());
        }
        Cli.run("bench", "step", "--preset", "huge").assertUsageError("--preset", "\"huge\"", "tiny or medium");
        Cli.run("bench", "step", "--workers", "5").assertUsageError("--workers", "5", "at most --batch 4");
        Cli.run("bench", "step", "--optimizer", "sgd").assertUsageError("--optimizer", "\"sgd\"");
        Cli.run("bench", "step", "--optimizer", "lion", "--peer").assertUsageError("--optimizer", "adamw with --peer");
        // without the sources (or without python3-torch) --peer says what is missing before anything runs
        Cli.run("bench", "step", "--peer", "--peer_sources", "/nonexistent/peer-sources").assertUsageError("--peer: ");
    }

    /** Formation and handshake seconds from the coordinator's train.log lines, as RunLog writes them. */
    @Test
    void startupTimesShouldComeFromTheCoordinatorsLog(@org.junit.jupiter.api.io.TempDir java.nio.file.Path tmp) throws Exception {
        java.nio.file.Path log = java.nio.file.Files.write(tmp.resolve("train.log"), java.util.List.of(
                "2026-12-07 10:00:01.000 INFO  d.d.c.Coordinator - worker akka://dreamcluster@127.0.0.1:1/user/w at 127.0.0.1:9 (1 available, min 2)",
                "2026-12-07 10:00:03.500 INFO  d.d.c.Coordinator - worker akka://dreamcluster@127.0.0.1:2/user/w at 127.0.0.1:8 (2 available, min 2)",
                "2026-12-07 10:00:04.250 INFO  d.d.c.Coordinator - generation 0 started: 2 workers from step 0 (start)",
                "2026-12-07 10:00:09.000 INFO  d.d.c.Coordinator - generation 1 started: 2 workers from step 5 (grow)"));
        StepBench.Startup s = StepBench.startup(log, java.time.LocalTime.parse("10:00:00.000"), 2, 5e8);
        assertEquals(3.5, s.formation(), 1e-9);
        assertEquals(0.75, s.handshake(), 1e-9);
        assertEquals(5e8, s.peakRss());
        assertTrue(Double.isNaN(StepBench.startup(log, java.time.LocalTime.parse("10:00:00.000"), 3, 0).formation()),
                "a third worker never came");
    }

    /**
     * {@code bench step --peer}: diffusers + transformers on Debian's torch beside DreamCluster, at 1 and
     * 2 workers, and the ratio. Needs python3-torch and the two source trees (DREAMCLUSTER_PEER_SOURCES;
     * neither is on the CI image, so it skips there).
     */
    @Test
    void stepBenchShouldCompareWithTorch() throws Exception {
        String missing = StepPeer.missing(StepPeer.sources(null));
        assumeTrue(missing == null, () -> "bench step --peer " + missing);
        Cli r = Cli.run("bench", "step", "--preset", "tiny", "--workers", "1,2", "--steps", "1", "--warmup", "1", "--peer");
        assertEquals(0, r.status(), r.err());
        for (String s : new String[] {"against torch (torch ", "diffusers ", "transformers ", "DDP over gloo", "torch step (ms)",
                "torch optimizer (ms)", "DreamCluster / torch", "torch is handed the decoded pixels"}) {
            assertTrue(r.out().contains(s), r.out());
        }
        // one row per worker count: workers, threads (cores / processes), both steps, the split, the ratio
        int cores = Runtime.getRuntime().availableProcessors();
        for (int w : new int[] {1, 2}) {
            String row = r.out().lines().filter(l -> l.matches(w + " +" + Math.max(1, cores / w) + " +\\d+ +\\d+ +[0-9.]+ +[0-9.]+ +[0-9.]+x"))
                    .findFirst().orElse(null);
            assertNotNull(row, () -> w + " worker(s): no DreamCluster / torch row in\n" + r.out());
        }
    }
}
