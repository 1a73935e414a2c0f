package dev.dreamcluster.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.dreamcluster.model.DiffusersFolder;
import dev.dreamcluster.model.Presets;
import dev.dreamcluster.safetensors.DType;
import dev.dreamcluster.worker.data.SyntheticDataset;
import java.io.File;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * End to end with containers: deploy/Dockerfile built offline with podman from the local JRE base
 * (.ci/setup.d/podman.sh makes it), then deploy/compose.yaml with podman-compose: a coordinator and
 * 2 worker containers train the tiny model 2 steps on a container network, and the final folder,
 * the checkpoint and metrics appear in the host folder mounted as /out. Containers, network and the
 * test image are removed afterwards, also on failure. Runs after `package` (it needs the
 * distribution); skips, naming what is missing, without podman, podman-compose or the base image.
 */
class ComposeIT {
    static final Path ROOT = LaunchCommand.repositoryRoot(Path.of(System.getProperty("user.dir")));
    static final String BASE = "localhost/dreamcluster-base:17";

    @Test
    void twoWorkerContainersShouldTrainTheTinyModelAndLeaveTheFinalFolderOnTheHost(@TempDir Path tmp) throws Exception {
        assumeTrue(run(tmp, 60, "podman", "--version") == 0, "podman is not installed (Debian: podman, runc; see .ci/setup.d/podman.sh)");
        assumeTrue(run(tmp, 60, "podman-compose", "--version") == 0, "podman-compose is not installed (Debian: podman-compose)");
        assumeTrue(run(tmp, 60, "podman", "image", "exists", BASE) == 0,
                "no local JRE base image " + BASE + " (made by .ci/setup.d/podman.sh with mmdebstrap)");
        assumeTrue(Files.isRegularFile(ROOT.resolve("deploy/cli/target/dist/lib/dreamcluster-cli.jar")), "no distribution: run mvn package first");

        String tag = "localhost/dreamcluster:it-" + ProcessHandle.current().pid();
        String project = "dcit" + ProcessHandle.current().pid();
        DiffusersFolder.writeRandom(tmp.resolve("model"), Presets.TINY, 0, DType.F32);
        SyntheticDataset.write(tmp.resolve("data"), 8, 64, 1);
        Files.createDirectories(tmp.resolve("config"));
        Files.createDirectories(tmp.resolve("out"));
        Files.copy(ROOT.resolve("deploy/compose/optimizer.json"), tmp.resolve("config/optimizer.json"));
        Files.writeString(tmp.resolve("config/train.json"), "{\"data_root\": \"/data\", \"resume_ckpt\": \"/model\", \"out\": \"/out\","
                + " \"optimizer_config\": \"optimizer.json\", \"resolution\": 64, \"batch_size\": 4, \"max_steps\": 2, \"seed\": 5,"
                + " \"val_every_n_steps\": 2, \"val_count\": 2, \"save_every_n_steps\": 2, \"save_full_precision\": true}");
        ClusterKeys.create(tmp.resolve("keys"), java.time.Duration.ofDays(1)); // every container's --keys (mutual TLS)
        int managementPort;
        try (ServerSocket s = new ServerSocket(0)) {
            managementPort = s.getLocalPort();
        }
        Map<String, String> env = Map.of("DREAMCLUSTER_IMAGE", tag, "DREAMCLUSTER_WORKERS", "2",
                "DREAMCLUSTER_CONFIG", tmp.resolve("config").toString(), "DREAMCLUSTER_MODEL", tmp.resolve("model").toString(),
                "DREAMCLUSTER_DATA", tmp.resolve("data").toString(), "DREAMCLUSTER_OUT", tmp.resolve("out").toString(),
                "DREAMCLUSTER_KEYS", tmp.resolve("keys/node").toString(),
                "DREAMCLUSTER_MANAGEMENT_PORT", Integer.toString(managementPort),
                // two workers on this machine's cores: one thread each, or libtorch oversubscribes
                "DREAMCLUSTER_JAVA_OPTS", "-Dai.djl.pytorch.num_threads=1 -Dai.djl.pytorch.num_interop_threads=1");
        String compose = ROOT.resolve("deploy/compose/compose.yaml").toString();
        try {
            assertEquals(0, run(tmp, 300, "podman", "build", "--pull=never", "-q", "-f", ROOT.resolve("deploy/docker/Dockerfile").toString(),
                    "--build-arg", "BASE=" + BASE, "-t", tag, ROOT.toString()), "image build (see build.log)");
            long t0 = System.nanoTime();
            run(tmp, env, 400, "podman-compose", "-p", project, "-f", compose, "up", "--abort-on-container-exit");
            String log = Files.readString(tmp.resolve("podman-compose.log"));
            System.out.printf("compose run: %.0f s%n", (System.nanoTime() - t0) / 1e9);
            assertTrue(log.contains("run finished: finished"), log);
            Path out = tmp.resolve("out");
            assertTrue(Files.isRegularFile(out.resolve("final/model_index.json")), "final/ on the host");
            assertTrue(Files.isRegularFile(out.resolve("final/unet/diffusion_pytorch_model.safetensors")));
            assertTrue(Files.isRegularFile(out.resolve("checkpoints/step-000002/trainer_state.json")));
            assertTrue(Files.isRegularFile(out.resolve("checkpoints/step-000002/optimizer/unet/optimizer_state.json")));
            List<String> metrics = Files.readAllLines(out.resolve("metrics.jsonl"));
            assertTrue(metrics.stream().anyMatch(l -> l.contains("\"step\":2")), metrics.toString());
            assertTrue(log.contains("worker,dc-default] up") || log.contains("started on 2 workers"), log);
        } finally {
            run(tmp, env, 120, "podman-compose", "-p", project, "-f", compose, "down");
            run(tmp, 60, "podman", "network", "rm", "-f", project + "_default");
            run(tmp, 60, "podman", "rmi", "-f", tag);
        }
    }

    static int run(Path dir, int timeoutS, String... cmd) throws Exception {
        return run(dir, Map.of(), timeoutS, cmd);
    }

    /** Runs a command (output to DIR/NAME.log, appended); -1 when it cannot start, 124 on timeout. */
    static int run(Path dir, Map<String, String> env, int timeoutS, String... cmd) throws Exception {
        String name = cmd[0].equals("podman") && cmd.length > 1 ? "podman-" + cmd[1] : cmd[0];
        File log = dir.resolve(name + ".log").toFile();
        ProcessBuilder pb = new ProcessBuilder(new ArrayList<>(List.of(cmd))).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(log));
        pb.environment().putAll(env);
        Process p;
        try {
            p = pb.start();
        } catch (java.io.IOException e) {
            return -1;
        }
        if (!p.waitFor(timeoutS, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            return 124;
        }
        return p.exitValue();
    }
}
