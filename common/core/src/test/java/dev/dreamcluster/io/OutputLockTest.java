package dev.dreamcluster.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dreamcluster.config.ConfigError;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class OutputLockTest {
    @Test
    void shouldAdmitOneRunAndReleaseTheLock(@TempDir Path tmp) {
        Path out = tmp.resolve("out");
        List<String> warnings = new ArrayList<>();
        try (OutputLock lock = OutputLock.acquire(out, "--out", OutputLock.Mode.FRESH, warnings::add)) {
            assertTrue(Files.isRegularFile(out.resolve(OutputLock.FILE)));
            ConfigError e = assertThrows(ConfigError.class, () -> OutputLock.acquire(out, "--out", OutputLock.Mode.FRESH, warnings::add));
            assertTrue(e.getMessage().startsWith("--out: ") && e.getMessage().contains("in use by another run"), e.getMessage());
            assertTrue(e.getMessage().contains("pid " + ProcessHandle.current().pid()), e.getMessage());
        }
        assertFalse(Files.exists(out), "an empty folder the lock created is removed: a run that never started leaves nothing");
        assertEquals(List.of(), warnings);
    }

    @Test
    void shouldReplaceTheLockOfADeadProcess(@TempDir Path tmp) throws Exception {
        Process p = new ProcessBuilder("true").start();
        assertTrue(p.waitFor(10, TimeUnit.SECONDS));
        Path out = Files.createDirectories(tmp.resolve("out"));
        Files.writeString(out.resolve(OutputLock.FILE), "{\"pid\": " + p.pid() + ", \"host\": \"" + OutputLock.host()
                + "\", \"started\": \"then\"}");
        List<String> warnings = new ArrayList<>();
        try (OutputLock lock = OutputLock.acquire(out, "--out", OutputLock.Mode.FRESH, warnings::add)) {
            assertEquals(1, warnings.size(), warnings.toString());
            assertTrue(warnings.get(0).contains("stale lock") && warnings.get(0).contains("pid " + p.pid()), warnings.get(0));
        }
        assertTrue(Files.isDirectory(out), "a folder that existed stays");
        assertFalse(Files.exists(out.resolve(OutputLock.FILE)));
    }

    @Test
    void shouldNeverGuessAboutALockFromAnotherHost(@TempDir Path tmp) throws Exception {
        Path out = Files.createDirectories(tmp.resolve("out"));
        Files.writeString(out.resolve(OutputLock.FILE), "{\"pid\": 1, \"host\": \"elsewhere.invalid\", \"started\": \"x\"}");
        ConfigError e = assertThrows(ConfigError.class, () -> OutputLock.acquire(out, "t.json at out", OutputLock.Mode.FRESH, w -> { }));
        assertTrue(e.getMessage().contains("elsewhere.invalid") && e.getMessage().contains(out.resolve(OutputLock.FILE).toString()),
                e.getMessage());
    }

    @Test
    void shouldCheckOutputsByModeAndCleanTemporaryEntries(@TempDir Path tmp) throws Exception {
        Path out = Files.createDirectories(tmp.resolve("out"));
        Files.createDirectories(out.resolve("final"));
        Files.writeString(out.resolve("metrics.jsonl"), "{\"step\":0}\n");
        Files.createDirectories(out.resolve("checkpoints").resolve(".step-000004.tmp").resolve("model"));
        Files.createDirectories(out.resolve("checkpoints").resolve("step-000002"));
        Files.createDirectories(out.resolve("final.tmp-12345"));
        Files.writeString(out.resolve("notes.txt"), "mine");
        ConfigError e = assertThrows(ConfigError.class, () -> OutputLock.acquire(out, "--out", OutputLock.Mode.FRESH, w -> { }));
        assertTrue(e.getMessage().contains("finished run") && e.getMessage().contains("--overwrite"), e.getMessage());
        assertFalse(Files.exists(out.resolve(OutputLock.FILE)), "a refused run releases the lock");
        List<String> warnings = new ArrayList<>();
        try (OutputLock lock = OutputLock.acquire(out, "--out", OutputLock.Mode.RESUME, warnings::add)) {
            assertTrue(Files.exists(out.resolve("metrics.jsonl")), "resume keeps the outputs");
            assertFalse(Files.exists(out.resolve("final.tmp-12345")));
            assertFalse(Files.exists(out.resolve("checkpoints").resolve(".step-000004.tmp")));
            assertTrue(Files.exists(out.resolve("checkpoints").resolve("step-000002")));
            assertEquals(2, warnings.size(), warnings.toString());
        }
        try (OutputLock lock = OutputLock.acquire(out, "--out", OutputLock.Mode.OVERWRITE, w -> { })) {
            assertFalse(Files.exists(out.resolve("metrics.jsonl")));
            assertFalse(Files.exists(out.resolve("final")));
            assertFalse(Files.exists(out.resolve("checkpoints")));
            assertTrue(Files.exists(out.resolve("notes.txt")), "only a run's own outputs are deleted");
        }
    }

    @Test
    void shouldRefuseAFileAsTheFolder(@TempDir Path tmp) throws Exception {
        Path f = Files.writeString(tmp.resolve("f"), "x");
        ConfigError e = assertThrows(ConfigError.class, () -> OutputLock.acquire(f, "--out", OutputLock.Mode.FRESH, w -> { }));
        assertTrue(e.getMessage().contains("is a file"), e.getMessage());
        ConfigError e2 = assertThrows(ConfigError.class,
                () -> OutputLock.acquire(f.resolve("below"), "--out", OutputLock.Mode.FRESH, w -> { }));
        assertTrue(e2.getMessage().startsWith("--out: cannot create"), e2.getMessage());
    }
}
