package dev.dreamcluster.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dreamcluster.config.ConfigError;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code launch}: DeepSpeed hostfile parsing and its errors, the worker command lines it builds (ssh
 * for other hosts, a local process for localhost, a GPU per slot), and a real launch of two local
 * slots training the tiny model. The ssh path is not run end to end here (no sshd to reach).
 */
class LaunchCommandTest {
    @Test
    void hostfileShouldParseDeepSpeedLinesWithCommentsAndBlankLines() {
        Hostfile h = Hostfile.parse(List.of("# two nodes", "", "worker-1 slots=8", "  10.0.0.2   slots=4   # the small one"), "hosts");
        assertEquals(List.of(new Hostfile.Host("worker-1", 8), new Hostfile.Host("10.0.0.2", 4)), h.hosts());
        assertEquals(12, h.totalSlots());
    }

    @Test
    void badHostfileLinesShouldNameTheLineAndWhatIsAllowed() {
        assertEquals("hosts line 2: \"b slots=0\" is not allowed (slots=N with N a whole number >= 1)".replace("\"b slots=0\"", "\"slots=0\""),
                assertThrows(ConfigError.class, () -> Hostfile.parse(List.of("a slots=1", "b slots=0"), "hosts")).getMessage());
        assertTrue(assertThrows(ConfigError.class, () -> Hostfile.parse(List.of("a"), "hosts")).getMessage()
                .startsWith("hosts line 1: \"a\" is not allowed (HOST slots=N"));
        assertTrue(assertThrows(ConfigError.class, () -> Hostfile.parse(List.of("a slots=x"), "hosts")).getMessage()
                .contains("\"slots=x\""));
        assertTrue(assertThrows(ConfigError.class, () -> Hostfile.parse(List.of("a slots=1", "a slots=2"), "hosts")).getMessage()
                .contains("host \"a\" is listed twice"));
        assertEquals("hosts: no hosts (one line per host: HOST slots=N)",
                assertThrows(ConfigError.class, () -> Hostfile.parse(List.of("# nothing"), "hosts")).getMessage());
    }

    @Test
    void badInputShouldEndTheCommandWithOneLine(@TempDir Path tmp) throws Exception {
        Path hosts = Files.writeString(tmp.resolve("hosts"), "node slots=two\n");
        Path train = Files.writeString(tmp.resolve("train.json"), "{}");
        Cli.run("launch", "--hostfile", hosts.toString(), "--config", train.toString()).assertUsageError("line 1", "slots=two");
        Files.writeString(hosts, "node slots=2\n");
        Cli.run("launch", "--hostfile", hosts.toString(), "--config", train.toString(), "--bind", "10.0.0.1:0")
                .assertUsageError("--bind", "fixed port");
        Cli.run("launch", "--hostfile", tmp.resolve("missing").toString(), "--config", train.toString()).assertUsageError("--hostfile");
    }

    @Test
    void dryRunShouldPrintOneSshCommandPerRemoteSlotAndLocalProcessesForLocalhost(@TempDir Path tmp) throws Exception {
        Path hosts = Files.writeString(tmp.resolve("hosts"), "gpu-a slots=2\nlocalhost slots=1\n");
        Path train = Files.writeString(tmp.resolve("train.json"), "{}");
        Cli r = Cli.run("launch", "--hostfile", hosts.toString(), "--config", train.toString(), "--bind", "10.1.0.5:25520",
                "--device", "gpu", "--remote_dir", "/opt/dream cluster", "--dry_run", "--insecure");
        assertEquals(0, r.status(), r.err());
        assertEquals(List.of(
                "ssh -tt -o BatchMode=yes gpu-a 'exec '\\''/opt/dream cluster/bin/dreamcluster'\\'' worker --join 10.1.0.5:25520 --bind gpu-a:0 --insecure --device gpu:0'",
                "ssh -tt -o BatchMode=yes gpu-a 'exec '\\''/opt/dream cluster/bin/dreamcluster'\\'' worker --join 10.1.0.5:25520 --bind gpu-a:0 --insecure --device gpu:1'",
                "'/opt/dream cluster/bin/dreamcluster' worker --join 10.1.0.5:25520 --bind localhost:0 --insecure --device gpu:0"),
                r.out().strip().lines().toList());
        List<List<String>> withOpts = LaunchCommand.workerCommands(Hostfile.parse(List.of("n1 slots=1"), "h"), "c:1", "cpu",
                List.of("--model", "/m", "--data", "/d d"), "/d", "ssh -p 2222", "-Dx=1 -Dy=2");
        assertEquals(List.of("ssh", "-p", "2222", "-tt", "-o", "BatchMode=yes", "n1",
                "DREAMCLUSTER_JAVA_OPTS='-Dx=1 -Dy=2' exec /d/bin/dreamcluster worker --join c:1 --bind n1:0 --model /m --data '/d d'"), withOpts.get(0));
    }

    /** Two local slots: the distribution here is a bin/dreamcluster that runs this test's class path. */
    @Test
    void launchShouldTrainWithTheWorkersOfTheHostfile(@TempDir Path tmp) throws Exception {
        Path trainJson = ClusterTrainingTest.example(tmp);
        dev.dreamcluster.model.DiffusersFolder.writeRandom(tmp.resolve("tiny-model"), dev.dreamcluster.model.Presets.TINY, 0,
                dev.dreamcluster.safetensors.DType.F32);
        dev.dreamcluster.worker.data.SyntheticDataset.write(tmp.resolve("shapes"), 8, 64, 1);
        Path dist = Files.createDirectories(tmp.resolve("dist").resolve("bin"));
        Path script = dist.resolve("dreamcluster");
        Files.writeString(script, "#!/bin/sh\nexec '" + Path.of(System.getProperty("java.home"), "bin", "java") + "' -Dai.djl.offline=true"
                + " -Dai.djl.pytorch.num_threads=1 -cp '" + System.getProperty("java.class.path")
                + "' " + Main.class.getName() + " \"$@\"\n");
        Files.setPosixFilePermissions(script, PosixFilePermissions.fromString("rwxr-xr-x"));
        Path hosts = Files.writeString(tmp.resolve("hosts"), "127.0.0.1 slots=2\n");
        int port = ClusterTrainingTest.freePort();
        Cli r = Cli.run("launch", "--hostfile", hosts.toString(), "--config", trainJson.toString(), "--bind", "127.0.0.1:" + port,
                "--max_steps", "2", "--remote_dir", tmp.resolve("dist").toString(), "--keys", TestKeys.node(tmp));
        assertEquals(0, r.status(), r.out() + r.err());
        assertTrue(Files.isRegularFile(tmp.resolve("run").resolve("final").resolve("model_index.json")), r.err());
        assertTrue(Files.readString(tmp.resolve("launch-logs").resolve("worker-1.log")).contains("finished"));
    }
}
