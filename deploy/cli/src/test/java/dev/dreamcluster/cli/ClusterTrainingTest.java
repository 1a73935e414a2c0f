package dev.dreamcluster.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dreamcluster.config.Json;
import dev.dreamcluster.worker.data.SyntheticDataset;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code train --workers 2}: the coordinator in this JVM and two worker JVMs over loopback (Akka for
 * control, the TCP ring for data) train the tiny model; the event stream shows every step. Killing a
 * worker mid-run ends the run everywhere with a message naming the last checkpoint.
 */
class ClusterTrainingTest {
    /**
     * The tiny example's files in {@code tmp}, pinned to the settings these tests were sized with (batch 4,
     * lr 5e-4 constant, text encoder at half of it, validation every 25 steps, no latent cache, 48 images):
     * the example's own (issue 28: batch 64, lr 4e-3 after a warmup, a latent cache, 480 images, so that
     * its samples learn the captions) would make every run here several times slower while testing nothing more. The 48 images are the ones the example generated before (same seed).
     */
    static Path example(Path tmp) throws Exception {
        return example(tmp, true);
    }

    /** {@link #example(Path)}, leaving the dataset to be generated on first use when {@code withDataset} is false. */
    static Path example(Path tmp, boolean withDataset) throws Exception {
        Path example = Path.of("..", "..", "examples", "tiny");
        Files.copy(example.resolve("sample_prompts.json"), tmp.resolve("sample_prompts.json"));
        ObjectNode train = (ObjectNode) Json.MAPPER.readTree(example.resolve("train.json").toFile());
        train.put("batch_size", 4).put("val_every_n_steps", 25).remove("latent_cache");
        Files.writeString(tmp.resolve("train.json"), train.toPrettyString());
        ObjectNode optimizer = (ObjectNode) Json.MAPPER.readTree(example.resolve("optimizer.json").toFile());
        ((ObjectNode) optimizer.get("base")).put("lr", 5e-4).put("lr_scheduler", "constant").remove("lr_warmup_steps");
        optimizer.put("text_encoder_lr_scale", 0.5);
        Files.writeString(tmp.resolve("optimizer.json"), optimizer.toPrettyString());
        if (withDataset) {
            SyntheticDataset.write(tmp.resolve(train.get("data_root").asText()), 48, 64, 0);
        }
        return tmp.resolve("train.json");
    }

    static int freePort() throws Exception {
        try (java.net.ServerSocket s = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    /**
     * Stops a node a test started ({@link Nodes#stop}); one whose remoting did not stop in time is left
     * to the JVM's end, with its actor tree printed to show what was still running.
     */
    static void stopNode(akka.actor.typed.ActorSystem<?> node) throws Exception {
        if (!Nodes.stop(node)) {
            System.out.println(node.printTree());
        }
    }

    @Test
    void twoWorkerJvmsShouldTrainAndAMonitorShouldSeeEveryStep(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("run");
        Path trainJson = example(tmp);
        int port = freePort();
        String keys = tmp.resolve("keys").resolve("node").toString(); // one cluster key for the embedded cluster and the monitor
        assertEquals(0, Cli.run("keys", "--out", tmp.resolve("keys").toString()).status());
        CompletableFuture<Cli> train = CompletableFuture.supplyAsync(() -> Cli.run("train", "--config", trainJson.toString(),
                "--workers", "2", "--max_steps", "3", "--out", out.toString(), "--coordinator_bind", "127.0.0.1:" + port, "--keys", keys));
        Thread.sleep(1500); // the coordinator node is up well before the worker JVMs have loaded DJL
        Cli monitor = Cli.run("monitor", "--join", "127.0.0.1:" + port, "--keys", keys);
        Cli r = train.get(180, TimeUnit.SECONDS);
        assertEquals(0, r.status(), r.out() + r.err());
        assertEquals(0, monitor.status(), monitor.out() + monitor.err());
        String events = monitor.out();
        for (int s = 1; s <= 3; s++) {
            assertTrue(events.contains("step " + s + " loss "), "the monitor shows step " + s + ":\n" + events);
        }
        assertTrue(events.contains("[worker,dc-default] up"), "the monitor lists the members:\n" + events);
        assertTrue(events.contains("run finished"), events);
        List<String> metrics = Files.readAllLines(out.resolve("metrics.jsonl"));
        assertEquals(4, metrics.size(), "step 0 (the starting val_loss) and 3 steps: " + metrics);
        assertTrue(Files.isRegularFile(out.resolve("final").resolve("unet").resolve("diffusion_pytorch_model.safetensors")));
        assertTrue(Files.isRegularFile(out.resolve("checkpoints").resolve("step-000003").resolve("trainer_state.json")));
        // each rank's account of its time, which bench step prints: 3 steps, and where its ring time went
        List<String> ranks = StepBench.rankTimes(out, 2);
        assertEquals(2, ranks.size(), "a time line per worker log");
        for (String line : ranks) { // a worker log's number is its launch order; the rank is the coordinator's
            assertTrue(line.matches("rank [01]: 3 steps, medians per step: compute .*") && line.contains("; ring: wait in read ") && !line.contains("NaN")
                    && !line.contains(" 0.0 MB received"), line);
        }
        assertTrue(ranks.get(0).charAt(5) != ranks.get(1).charAt(5), "both ranks: " + ranks);
        // the worker JVMs the launcher started run the vector kernels with the JIT setting they need (ChildJvm, Simd)
        for (int w = 0; w < 2; w++) {
            List<String> log = Files.readAllLines(out.resolve("worker-" + w + ".log"));
            assertTrue(log.stream().anyMatch(l -> l.matches("rank [01]: optimizer kernels vector \\(.*, C2 trap limit 1000\\)")), String.join("\n", log));
        }
    }

    @Test
    void killingAWorkerJvmShouldEndTheRunWithin60Seconds(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("run");
        Path trainJson = example(tmp);
        CompletableFuture<Cli> run = CompletableFuture.supplyAsync(() -> Cli.run("train", "--config", trainJson.toString(),
                "--workers", "2", "--max_steps", "400", "--out", out.toString()));
        Path metrics = out.resolve("metrics.jsonl");
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(180);
        while ((!Files.exists(metrics) || Files.readAllLines(metrics).size() < 2) && System.nanoTime() < deadline) {
            Thread.sleep(200);
        }
        assertTrue(Files.exists(metrics), "training started");
        // the test JVM's only child processes are the two worker JVMs of this run
        ProcessHandle victim = ProcessHandle.current().children().filter(ProcessHandle::isAlive).findFirst().orElseThrow();
        victim.destroyForcibly();
        long t0 = System.nanoTime();
        Cli r = run.get(60, TimeUnit.SECONDS);
        double secs = (System.nanoTime() - t0) / 1e9;
        assertEquals(3, r.status(), r.out() + r.err());
        System.out.printf("run ended %.1f s after a worker JVM was killed%n", secs);
        assertTrue(r.err().contains("error: run failed") && r.err().contains("last committed checkpoint"), r.err());
        Thread.sleep(500);
        assertTrue(ProcessHandle.current().children().noneMatch(ProcessHandle::isAlive), "no worker left running");
    }
}
