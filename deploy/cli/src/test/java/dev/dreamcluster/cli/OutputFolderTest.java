package dev.dreamcluster.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dreamcluster.io.OutputLock;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * One run per output folder, with real processes: a second run into a folder a running train
 * holds is refused; the lock of a killed run is stale and replaced with a warning; a finished
 * folder needs --resume or --overwrite; keep_last_n_checkpoints prunes; stale temporary folders of
 * interrupted writes are deleted at start; an input error in a real process prints one line.
 */
class OutputFolderTest {
    @TempDir
    static Path base;
    static TinyInputs inputs;

    @BeforeAll
    static void makeInputs() {
        inputs = TinyInputs.make(base, "adamw");
    }

    static Process start(Path log, String... args) throws IOException {
        List<String> cmd = new java.util.ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Dai.djl.offline=true", "-cp", System.getProperty("java.class.path"), Main.class.getName()));
        cmd.addAll(List.of(args));
        return new ProcessBuilder(cmd).redirectErrorStream(false).redirectOutput(log.toFile())
                .redirectError(log.resolveSibling(log.getFileName() + ".err").toFile()).start();
    }

    @Test
    void shouldRefuseASecondRunAndReplaceTheLockOfAKilledOne(@TempDir Path tmp) throws Exception {
        Path cfg = inputs.trainJson(tmp.resolve("t.json"), n -> n.put("max_steps", 100000));
        Path out = tmp.resolve("run");
        Process first = start(tmp.resolve("first.log"), "train", "--config", cfg.toString(), "--out", out.toString());
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
            while (!Files.exists(out.resolve(OutputLock.FILE)) && first.isAlive() && System.nanoTime() < deadline) {
                Thread.sleep(100);
            }
            assertTrue(Files.exists(out.resolve(OutputLock.FILE)), "the first run holds the lock");
            Cli second = Cli.run("train", "--config", cfg.toString(), "--out", out.toString(), "--overwrite");
            second.assertUsageError("--out", out.toString(), "in use by another run", "pid " + first.pid());
        } finally {
            first.destroyForcibly().waitFor(30, TimeUnit.SECONDS); // kill -9: the lock stays behind
        }
        assertTrue(Files.exists(out.resolve(OutputLock.FILE)), "a killed run leaves its lock");
        Path cfg1 = inputs.trainJson(tmp.resolve("t1.json"), n -> { });
        Cli third = Cli.run("train", "--config", cfg1.toString(), "--out", out.toString(), "--overwrite");
        assertEquals(0, third.status(), third.err());
        assertTrue(third.err().contains("replacing the stale lock"), third.err());
        assertFalse(Files.exists(out.resolve(OutputLock.FILE)), "released at the end");
        assertEquals(2, Files.readAllLines(out.resolve("metrics.jsonl")).size(), "only this run's metrics: step 0 and 1");
    }

    @Test
    void shouldNeedResumeOrOverwriteForAFinishedFolderAndPrune(@TempDir Path tmp) throws Exception {
        Path cfg = inputs.trainJson(tmp.resolve("t.json"), n -> {
            n.put("max_steps", 4);
            n.put("save_every_n_steps", 1);
        });
        Path out = tmp.resolve("run");
        Cli r = Cli.run("train", "--config", cfg.toString(), "--out", out.toString(), "--keep_last_n_checkpoints", "2");
        assertEquals(0, r.status(), r.err());
        assertEquals(List.of("step-000003", "step-000004"), names(out.resolve("checkpoints")));
        assertTrue(Files.size(out.resolve("train.log")) > 0, "INFO lines went to train.log");
        Cli.run("train", "--config", cfg.toString(), "--out", out.toString())
                .assertUsageError("--out", "finished run", "--resume", "--overwrite");
        // interrupted writes of an earlier run: deleted when the next run takes the folder
        Files.createDirectories(out.resolve("checkpoints").resolve(".step-000009.tmp").resolve("model"));
        Files.createDirectories(out.resolve("final.tmp-999999"));
        Cli again = Cli.run("train", "--config", cfg.toString(), "--out", out.toString(), "--overwrite", "--max_steps", "2");
        assertEquals(0, again.status(), again.err());
        assertFalse(Files.exists(out.resolve("final.tmp-999999")));
        assertEquals(List.of("step-000001", "step-000002"), names(out.resolve("checkpoints")), "old run's checkpoints replaced");
        assertEquals(3, Files.readAllLines(out.resolve("metrics.jsonl")).size());
        Cli more = Cli.run("train", "--config", cfg.toString(), "--out", out.toString(), "--max_steps", "3", "--resume",
                out.resolve("checkpoints").resolve("step-000001").toString());
        assertEquals(0, more.status(), more.err());
        List<String> lines = Files.readAllLines(out.resolve("metrics.jsonl"));
        assertEquals(4, lines.size(), "steps 0, 1 kept; 2 and 3 trained again: " + lines);
        assertTrue(lines.get(3).startsWith("{\"step\":3"), lines.get(3));
    }

    @Test
    void shouldPrintOneLineAndNoLogLinesForAnInputErrorInARealProcess(@TempDir Path tmp) throws Exception {
        Path empty = Files.createDirectories(tmp.resolve("empty"));
        Path cfg = inputs.trainJson(tmp.resolve("t.json"), n -> n.put("data_root", empty.toString()));
        Path log = tmp.resolve("p.log");
        Process p = start(log, "train", "--config", cfg.toString(), "--out", tmp.resolve("run").toString());
        assertTrue(p.waitFor(120, TimeUnit.SECONDS));
        String err = Files.readString(log.resolveSibling("p.log.err"), StandardCharsets.UTF_8);
        assertEquals(2, p.exitValue(), err);
        assertEquals(1, err.strip().split("\n").length, "exactly one line: " + err);
        assertTrue(err.startsWith("error: data_root: "), err);
        assertFalse(Files.exists(tmp.resolve("run").resolve("train_config.json")));
    }

    static List<String> names(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }
}
