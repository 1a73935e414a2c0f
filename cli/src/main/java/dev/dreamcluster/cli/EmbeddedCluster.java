package dev.dreamcluster.cli;

import akka.actor.typed.ActorSystem;
import akka.cluster.typed.Cluster;
import dev.dreamcluster.coordinator.CoordinatorSettings;
import dev.dreamcluster.protocol.RunPlan;
import dev.dreamcluster.protocol.TrainingEvent;
import dev.dreamcluster.worker.node.Worker;
import dev.dreamcluster.worker.train.TrainConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * {@code train --workers N}: the coordinator in this process and N worker JVMs it starts on
 * 127.0.0.1, all stopped at the end or on Ctrl-C. Worker logs go to {@code <out>/worker-R.log}.
 */
final class EmbeddedCluster {
    private final Path trainJson;
    private final TrainConfig cfg;
    private final int workers;
    private final String host;
    private final int bindPort;
    private DeviceOptions device = new DeviceOptions();

    EmbeddedCluster(Path trainJson, TrainConfig cfg, int workers, String host, int bindPort) {
        this.trainJson = trainJson;
        this.cfg = cfg;
        this.workers = workers;
        this.host = host;
        this.bindPort = bindPort;
    }

    /** The workers' --device/--collective and the PYTORCH_* settings (already applied to this JVM). */
    EmbeddedCluster withDevice(DeviceOptions d) {
        this.device = d;
        return this;
    }

    int run(java.io.PrintWriter out, java.io.PrintWriter err) throws Exception {
        long runId = System.nanoTime() ^ ProcessHandle.current().pid();
        int maxSteps = cfg.maxSteps() == null ? 0 : cfg.maxSteps();
        RunPlan probe = new RunPlan(runId, "", Collections.nCopies(workers, "127.0.0.1:0"), trainJson.toString(), maxSteps,
                cfg.out().toString());
        String hash = Worker.localPlanHash(probe);
        CoordinatorSettings settings = new CoordinatorSettings(workers, runId, hash, trainJson, maxSteps, cfg.out(),
                dev.dreamcluster.worker.train.ComputeConfig.load(trainJson, device.overrides()).collective());
        Files.createDirectories(cfg.out());
        CompletableFuture<TrainingEvent.RunFinished> done = new CompletableFuture<>();
        ActorSystem<Void> system = Nodes.startCoordinator(settings, host, bindPort, done);
        int port = Cluster.get(system).selfMember().address().getPort().orElseThrow();
        List<Process> children = new ArrayList<>();
        Thread hook = new Thread(() -> children.forEach(Process::destroyForcibly));
        Runtime.getRuntime().addShutdownHook(hook); // Ctrl-C stops the workers too
        try {
            // local workers share this machine's cores: give each its share, or libtorch's and the
            // optimizer's thread pools oversubscribe the CPU (measured 5x slower on 2 cores)
            int threads = Math.max(1, Runtime.getRuntime().availableProcessors() / workers);
            for (int r = 0; r < workers; r++) {
                List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                        "-Dai.djl.offline=true", "-Dai.djl.pytorch.num_threads=" + threads, "-Dai.djl.pytorch.num_interop_threads=1",
                        "-Ddreamcluster.optimizer.threads=" + threads));
                cmd.addAll(device.jvmFlags()); // PYTORCH_LIBRARY_PATH/VERSION/FLAVOR for a GPU
                cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), Main.class.getName(), "worker", "--seed", host + ":" + port,
                        "--bind", host + ":0"));
                cmd.addAll(device.workerFlags(r)); // gpu:N becomes gpu:(N + r): one GPU per worker
                children.add(new ProcessBuilder(cmd)
                        .redirectErrorStream(true).redirectOutput(cfg.out().resolve("worker-" + r + ".log").toFile()).start());
            }
            System.err.println("coordinator on " + host + ":" + port + ", " + workers + " workers starting (logs in "
                    + cfg.out().resolve("worker-*.log") + ")");
            TrainingEvent.RunFinished end = done.get(7, TimeUnit.DAYS);
            for (Process p : children) {
                if (!p.waitFor(60, TimeUnit.SECONDS)) {
                    p.destroyForcibly();
                }
            }
            if (!end.ok()) {
                err.println("error: run failed: " + end.message());
                err.flush();
                return 3;
            }
            out.println("done: " + end.message());
            out.flush();
            return 0;
        } finally {
            children.forEach(Process::destroyForcibly);
            system.terminate();
            Runtime.getRuntime().removeShutdownHook(hook);
        }
    }
}
