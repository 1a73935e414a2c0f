package dev.dreamcluster.cli;

import static dev.dreamcluster.cli.ElasticRunTest.awaitStep;
import static dev.dreamcluster.cli.ElasticRunTest.ended;
import static dev.dreamcluster.cli.ElasticRunTest.generations;
import static dev.dreamcluster.cli.ElasticRunTest.lastStep;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dreamcluster.worker.fixture.TinyRun;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Spot-safe workers: SIGTERM to one worker JVM (a spot notice, a deleted pod) makes the run commit a
 * checkpoint after the step in flight and go on from it with the others, instead of from its last
 * periodic checkpoint (here: none before the end). That a run going on from a checkpoint on fewer
 * workers equals a {@code --resume} of it, bit for bit, is ElasticRunTest's (AdamW8bit, 3 workers to 2):
 * the SIGTERM's checkpoint is written by the same code as a periodic one, at a step the ranks agree on,
 * so this test checks that agreement (the step in flight, no step lost) and the next generation's start
 * without paying for a second cluster (the suite's budget, docs/testing.md).
 */
class SpotSafeTest {
    @AfterEach
    void killLeftovers() {
        ProcessHandle.current().children().forEach(ProcessHandle::destroyForcibly);
    }

    @Test
    void aSigtermedWorkerLeavesAfterACheckpointOfTheStepInFlight(@TempDir Path tmp) throws Exception {
        // periodic checkpoints every 25 steps: none before the end, so only the SIGTERM's can be the restart point
        Path trainJson = TinyRun.write(tmp, TinyRun.optimizer("adamw"), 12, "\"batch_size\": 6, \"save_every_n_steps\": 25,"
                + " \"save_full_precision\": true");
        Path out = tmp.resolve("spot");
        CompletableFuture<Cli> run = CompletableFuture.supplyAsync(() -> Cli.run("train", "--config", trainJson.toString(),
                "--workers", "3", "--min_workers", "2", "--max_steps", "20", "--out", out.toString(), "--preemption_grace", "60"));
        awaitStep(out.resolve("metrics.jsonl"), 6, ended(run));
        ProcessHandle victim = ProcessHandle.current().children().filter(ProcessHandle::isAlive).reduce((a, b) -> b).orElseThrow();
        int k = lastStep(out.resolve("metrics.jsonl")); // the last step reported when the notice comes
        long t0 = System.nanoTime();
        victim.destroy(); // SIGTERM
        assertTrue(victim.onExit().get(90, TimeUnit.SECONDS) != null, "the SIGTERMed worker exits");
        double exitSeconds = (System.nanoTime() - t0) / 1e9;
        Cli r = run.get(300, TimeUnit.SECONDS);
        assertEquals(0, r.status(), r.out() + r.err());
        List<int[]> gens = generations(r.err());
        assertEquals(2, gens.size(), r.err());
        assertEquals(3, gens.get(0)[1]);
        assertEquals(2, gens.get(1)[1], "the second generation runs on the 2 survivors");
        int from = gens.get(1)[2];
        System.out.printf("SIGTERM after reported step %d: the next generation started from step %d (%d step(s) lost);"
                + " the worker exited %.1f s after SIGTERM%n", k, from, Math.max(0, k - from), exitSeconds);
        // the step in flight (k + 1), or the one after if the notice came as it ended; never an older one
        assertTrue(from >= k && from <= k + 2, "restarted from the SIGTERM's checkpoint: step " + from + " (SIGTERM after step " + k
                + ")\n" + r.err());
        assertTrue(Files.isRegularFile(out.resolve(String.format("checkpoints/step-%06d/trainer_state.json", from))));
        assertEquals(20, lastStep(out.resolve("metrics.jsonl")));
    }

    private static Process java(Path log, List<String> args) throws Exception {
        List<String> cmd = new java.util.ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Dai.djl.offline=true", "-Dai.djl.pytorch.num_threads=1", "-Dai.djl.pytorch.num_interop_threads=1",
                "-cp", System.getProperty("java.class.path"), Main.class.getName()));
        cmd.addAll(args);
        return new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
    }

    @Test
    void aSigtermedCoordinatorStopsAtACheckpointAndPrintsTheCommandThatResumesIt(@TempDir Path tmp) throws Exception {
        Path trainJson = TinyRun.write(tmp, TinyRun.optimizer("adamw"), 12, "\"batch_size\": 6, \"save_every_n_steps\": 25");
        Path out = tmp.resolve("run");
        String keys = TestKeys.node(tmp);
        int port = ClusterTrainingTest.freePort();
        Path log = tmp.resolve("coordinator.log");
        Process coordinator = java(log, List.of("coordinator", "--config", trainJson.toString(), "--bind", "127.0.0.1:" + port,
                "--min_workers", "2", "--max_steps", "20", "--out", out.toString(), "--keys", keys));
        Process a = java(tmp.resolve("a.log"), List.of("worker", "--join", "127.0.0.1:" + port, "--keys", keys));
        Process b = java(tmp.resolve("b.log"), List.of("worker", "--join", "127.0.0.1:" + port, "--keys", keys));
        awaitStep(out.resolve("metrics.jsonl"), 4, ended(coordinator, log));
        int k = lastStep(out.resolve("metrics.jsonl"));
        coordinator.destroy(); // SIGTERM
        assertTrue(coordinator.waitFor(120, TimeUnit.SECONDS), "the coordinator exits");
        String text = Files.readString(log);
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("(?m)^resume: bin/dreamcluster (.*)$").matcher(text);
        assertTrue(m.find(), text);
        List<String> args = List.of(m.group(1).split(" "));
        String ckpt = args.get(args.size() - 1);
        assertEquals("--resume", args.get(args.size() - 2), m.group(0));
        assertTrue(Files.isRegularFile(Path.of(ckpt, "trainer_state.json")), "a committed checkpoint: " + ckpt);
        int at = Integer.parseInt(Path.of(ckpt).getFileName().toString().substring("step-".length()));
        System.out.printf("coordinator SIGTERM after reported step %d: checkpoint at step %d; %s%n", k, at, m.group(0));
        assertTrue(at >= k && at <= k + 2, "the checkpoint of the step in flight: " + at + " (SIGTERM after step " + k + ")\n" + text);
        assertTrue(a.waitFor(60, TimeUnit.SECONDS) && b.waitFor(60, TimeUnit.SECONDS), "every worker exits");

        // the printed command resumes the run to its end
        Process again = java(tmp.resolve("again.log"), args);
        java(tmp.resolve("a2.log"), List.of("worker", "--join", "127.0.0.1:" + port, "--keys", keys));
        java(tmp.resolve("b2.log"), List.of("worker", "--join", "127.0.0.1:" + port, "--keys", keys));
        assertTrue(again.waitFor(240, TimeUnit.SECONDS), "the resumed run ends");
        String resumed = Files.readString(tmp.resolve("again.log"));
        assertEquals(0, again.exitValue(), resumed);
        // (generation 0 of a resumed run reports "from step 0"; its first step says where it resumed)
        java.util.regex.Matcher first = java.util.regex.Pattern.compile("(?m)^step (\\d+) loss").matcher(resumed);
        assertTrue(first.find() && Integer.parseInt(first.group(1)) == at + 1, "resumed after step " + at + ":\n" + resumed);
        assertEquals(20, lastStep(out.resolve("metrics.jsonl")));
    }

    @Test
    void aSigtermedTrainLauncherStopsItsWorkersAfterACheckpointAndPrintsTheResumeCommand(@TempDir Path tmp) throws Exception {
        Path trainJson = TinyRun.write(tmp, TinyRun.optimizer("adamw"), 12, "\"batch_size\": 6, \"save_every_n_steps\": 25");
        Path out = tmp.resolve("run");
        Path log = tmp.resolve("train.log");
        Process train = java(log, List.of("train", "--config", trainJson.toString(), "--workers", "2", "--max_steps", "40", "--out",
                out.toString()));
        awaitStep(out.resolve("metrics.jsonl"), 4, ended(train, log));
        List<ProcessHandle> workers = train.descendants().toList();
        int k = lastStep(out.resolve("metrics.jsonl"));
        train.destroy(); // SIGTERM
        assertTrue(train.waitFor(120, TimeUnit.SECONDS), "the launcher exits");
        String text = Files.readString(log);
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("(?m)^resume: bin/dreamcluster train (.*) --resume (\\S+)$")
                .matcher(text);
        assertTrue(m.find(), text);
        Path ckpt = Path.of(m.group(2));
        assertTrue(Files.isRegularFile(ckpt.resolve("trainer_state.json")), "a committed checkpoint: " + ckpt);
        int at = Integer.parseInt(ckpt.getFileName().toString().substring("step-".length()));
        System.out.printf("train launcher SIGTERM after reported step %d: checkpoint at step %d; %s%n", k, at, m.group(0));
        assertTrue(at >= k && at <= k + 2, "the checkpoint of the step in flight: " + at + " (SIGTERM after step " + k + ")\n" + text);
        for (ProcessHandle w : workers) {
            w.onExit().get(30, TimeUnit.SECONDS); // every local worker is gone
        }
    }

    @Test
    void aBadPreemptionGraceIsOneLine(@TempDir Path tmp) throws Exception {
        Cli r = Cli.run("worker", "--join", "127.0.0.1:1", "--preemption_grace", "-1", "--keys", TestKeys.node(tmp));
        assertEquals(2, r.status(), r.err());
        assertTrue(r.err().contains("--preemption_grace: -1 is not allowed"), r.err());
    }
}
