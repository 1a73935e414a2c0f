package dev.dreamcluster.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.dreamcluster.config.Json;
import dev.dreamcluster.config.LrSchedule;
import dev.dreamcluster.config.LrSchedulerName;
import dev.dreamcluster.worker.fixture.TinyRun;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The coordinator owns the run: every flag of {@code train} reaches every worker of an embedded
 * cluster (the workers read no config), and workers whose model and data copies live in their own
 * folders train exactly what one process trains.
 */
class RunOwnershipTest {
    @Test
    void everyTrainFlagShouldReachEveryWorkerOfAnEmbeddedCluster(@TempDir Path tmp) throws Exception {
        Path trainJson = ClusterTrainingTest.example(tmp);
        Files.writeString(tmp.resolve("other.json"), "{\"base\": {\"optimizer\": \"lion\", \"weight_decay\": 0.2}}");
        Path out = tmp.resolve("run");
        Cli r = Cli.run("train", "--config", trainJson.toString(), "--workers", "2", "--max_steps", "3", "--out", out.toString(),
                "--lr", "3e-05", "--lr_scheduler", "linear", "--lr_warmup_steps", "1", "--lr_decay_steps", "10",
                "--optimizer_config", tmp.resolve("other.json").toString(), "--disable_textenc_training", "--seed", "7");
        assertEquals(0, r.status(), r.out() + r.err());

        JsonNode state = Json.MAPPER.readTree(out.resolve("checkpoints/step-000003/trainer_state.json").toFile());
        JsonNode unet = state.path("optimizer_config").path("unet");
        assertEquals(3e-05, unet.path("lr").doubleValue());
        assertEquals("linear", unet.path("lr_scheduler").asText());
        assertEquals(1, unet.path("lr_warmup_steps").intValue());
        assertEquals(10, unet.path("lr_decay_steps").intValue());
        assertEquals("lion", unet.path("optimizer").asText(), "--optimizer_config beats train.json's optimizer_config");
        assertEquals(0.2, unet.path("weight_decay").doubleValue());
        assertTrue(state.path("optimizer_config").path("text_encoder").isNull(), "--disable_textenc_training");
        assertEquals(7, state.path("train_config").path("seed").intValue());
        assertEquals(3, state.path("train_config").path("max_steps").intValue());
        assertEquals(2, state.path("world_size").intValue());

        LrSchedule expected = new LrSchedule(LrSchedulerName.LINEAR, 3e-05, 1, 10);
        List<String> metrics = Files.readAllLines(out.resolve("metrics.jsonl"));
        assertEquals(4, metrics.size(), "step 0 (starting val_loss) and 3 steps: " + metrics);
        for (int s = 1; s <= 3; s++) {
            JsonNode m = Json.MAPPER.readTree(metrics.get(s));
            assertEquals(s, m.path("step").intValue());
            assertEquals(expected.lrAt(s - 1), m.path("lr_unet").doubleValue(), 1e-12, "lr of step " + s);
            assertEquals(0.0, m.path("lr_text_encoder").doubleValue(), "the text encoder is not trained");
        }
        for (int rank = 0; rank < 2; rank++) {
            String log = Files.readString(out.resolve("worker-" + rank + ".log"));
            assertTrue(log.contains("run config") && log.contains("\"lr\":3e-05") && log.contains("\"optimizer\":\"lion\"")
                    && log.contains("\"seed\":7") && log.contains("\"text_encoder\":null"), "worker " + rank + " got the flags:\n" + log);
        }

        // --resume works the same with --workers: the run continues from step 3 to 5
        Cli more = Cli.run("train", "--config", trainJson.toString(), "--workers", "2", "--max_steps", "5", "--out", out.toString(),
                "--lr", "3e-05", "--lr_scheduler", "linear", "--lr_warmup_steps", "1", "--lr_decay_steps", "10",
                "--optimizer_config", tmp.resolve("other.json").toString(), "--disable_textenc_training", "--seed", "7",
                "--resume", out.resolve("checkpoints/step-000003").toString());
        assertEquals(0, more.status(), more.out() + more.err());
        metrics = Files.readAllLines(out.resolve("metrics.jsonl"));
        assertEquals(6, metrics.size(), metrics.toString());
        assertEquals(5, Json.MAPPER.readTree(metrics.get(5)).path("step").intValue());
        assertEquals(expected.lrAt(4), Json.MAPPER.readTree(metrics.get(5)).path("lr_unet").doubleValue(), 1e-12);
    }

    /** The threads of a process that should have ended (jcmd of this JDK), for the failure message. */
    static String threadDump(Process p) throws Exception {
        Process jcmd = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "jcmd").toString(), Long.toString(p.pid()),
                "Thread.print").redirectErrorStream(true).start();
        String dump = new String(jcmd.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        jcmd.waitFor(30, TimeUnit.SECONDS);
        return "\nthreads of pid " + p.pid() + ":\n" + dump;
    }

    @Test
    void workersWithTheirOwnModelAndDataCopiesShouldTrainLikeOneProcess(@TempDir Path tmp) throws Exception {
        Path coord = tmp.resolve("coordinator");
        Path trainJson = TinyRun.write(coord, TinyRun.optimizer("adamw"), 12, "");
        Cli one = Cli.run("train", "--config", trainJson.toString(), "--max_steps", "6", "--out", tmp.resolve("one").toString());
        assertEquals(0, one.status(), one.err());
        List<Path> nodes = new ArrayList<>();
        for (String n : List.of("node-a", "node-b")) {
            Path node = tmp.resolve(n);
            TinyRun.copyTree(coord.resolve("model"), node.resolve("weights"));
            TinyRun.copyTree(coord.resolve("data"), node.resolve("images"));
            nodes.add(node);
        }
        int port = ClusterTrainingTest.freePort();
        CompletableFuture<Cli> coordinator = CompletableFuture.supplyAsync(() -> Cli.run("coordinator", "--config", trainJson.toString(),
                "--bind", "127.0.0.1:" + port, "--min_workers", "2", "--max_steps", "6", "--out", tmp.resolve("metrics").toString(),
                "--keys", TestKeys.node(tmp)));
        List<Process> workers = new ArrayList<>();
        try {
            for (Path node : nodes) {
                workers.add(new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Dai.djl.offline=true",
                        "-Dai.djl.pytorch.num_threads=1", "-Dai.djl.pytorch.num_interop_threads=1",
                        "-cp", System.getProperty("java.class.path"), Main.class.getName(), "worker", "--join", "127.0.0.1:" + port,
                        "--model", node.resolve("weights").toString(), "--data", node.resolve("images").toString(),
                        "--out", node.resolve("out").toString(), "--keys", TestKeys.node(tmp))
                        .redirectErrorStream(true).redirectOutput(node.resolve("worker.log").toFile()).start());
            }
            Cli c = coordinator.get(300, TimeUnit.SECONDS);
            assertEquals(0, c.status(), c.err() + Files.readString(nodes.get(0).resolve("worker.log")));
            long coordinatorEnded = System.nanoTime();
            for (int w = 0; w < workers.size(); w++) {
                Process p = workers.get(w);
                boolean exited = p.waitFor(60, TimeUnit.SECONDS);
                System.out.printf("worker %d exited %.1f s after the coordinator%n", w, (System.nanoTime() - coordinatorEnded) / 1e9);
                String log = Files.readString(nodes.get(w).resolve("worker.log"));
                assertTrue(exited, "worker " + w + " still running 60 s after the coordinator ended:\n" + log + threadDump(p));
                assertEquals(0, p.exitValue(), log);
            }
        } finally {
            workers.forEach(Process::destroyForcibly);
        }
        assertEquals(7, Files.readAllLines(tmp.resolve("metrics").resolve("metrics.jsonl")).size(), "the coordinator's metrics");
        Path finalOfRank0 = nodes.stream().map(n -> n.resolve("out").resolve("final")).filter(Files::isDirectory).findFirst().orElseThrow();
        double worst = TinyRun.worstRelativeDifference(tmp.resolve("one").resolve("final"), finalOfRank0, coord.resolve("model"));
        System.out.println("2 workers with their own copies vs 1 process after 6 AdamW steps: worst relative difference " + worst);
        assertTrue(worst <= TinyRun.ADAMW_EQUIVALENCE_BOUND, "worst relative difference " + worst);
    }
}
