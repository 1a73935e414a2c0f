package dev.dreamcluster.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A worker whose coordinator never answers gives up after --join_timeout with one line and exit 3, instead of trying forever. */
class WorkerJoinTimeoutTest {
    @Test
    void aWorkerShouldGiveUpJoiningAfterItsJoinTimeout(@TempDir Path tmp) throws Exception {
        int nobody = ClusterTrainingTest.freePort(); // nothing listens there
        Path log = tmp.resolve("worker.log");
        long t0 = System.nanoTime();
        Process p = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Dai.djl.offline=true",
                "-cp", System.getProperty("java.class.path"), Main.class.getName(), "worker", "--join", "127.0.0.1:" + nobody,
                "--join_timeout", "4", "--keys", TestKeys.node(tmp))
                .redirectErrorStream(true).redirectOutput(log.toFile()).start();
        try {
            assertTrue(p.waitFor(90, TimeUnit.SECONDS), "still trying to join after 90 s:\n" + Files.readString(log));
        } finally {
            p.destroyForcibly();
        }
        double seconds = (System.nanoTime() - t0) / 1e9;
        String out = Files.readString(log);
        System.out.printf("worker gave up joining after %.1f s (--join_timeout 4, JVM start included)%n", seconds);
        assertEquals(3, p.exitValue(), out);
        assertTrue(out.contains("error: worker: could not join the cluster at 127.0.0.1:" + nobody + " within 4 s (--join_timeout)"), out);
        Cli.run("worker", "--join", "127.0.0.1:1", "--join_timeout", "-1", "--keys", TestKeys.node(tmp))
                .assertUsageError("--join_timeout", "-1", "0 (keep trying)");
    }
}
