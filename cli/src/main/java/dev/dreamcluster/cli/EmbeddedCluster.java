package dev.dreamcluster.cli;

import akka.actor.typed.ActorSystem;
import akka.cluster.typed.Cluster;
import dev.dreamcluster.config.RunConfig;
import dev.dreamcluster.coordinator.CoordinatorSettings;
import dev.dreamcluster.protocol.TrainingEvent;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * {@code train --workers N}: the coordinator in this process and N worker JVMs it starts on
 * 127.0.0.1, all stopped at the end or on Ctrl-C. Worker logs go to {@code <out>/worker-R.log}.
 */
final class EmbeddedCluster {
    private final RunConfig run;
    private final CoordinatorSettings settings;
    private final int workers;
    private final Nodes.HostPort bind;

    /** @param workers local worker JVMs to start (at least the settings' min_workers) */
    EmbeddedCluster(RunConfig run, CoordinatorSettings settings, int workers, Nodes.HostPort bind) {
        this.run = run;
        this.settings = settings;
        this.workers = workers;
        this.bind = bind;
    }

    int run(java.io.PrintWriter out, java.io.PrintWriter err) throws Exception {
        Path outDir = run.train().out();
        Files.createDirectories(outDir);
        CompletableFuture<TrainingEvent.RunFinished> done = new CompletableFuture<>();
        ActorSystem<Void> system = Nodes.startCoordinator(settings, bind, null, done, err);
        int port = Cluster.get(system).selfMember().address().getPort().orElseThrow();
        List<Process> children = new ArrayList<>();
        Thread hook = new Thread(() -> children.forEach(Process::destroyForcibly));
        Runtime.getRuntime().addShutdownHook(hook); // Ctrl-C stops the workers too
        try {
            // local workers share this machine's cores: give each its share, or libtorch's and the
            // optimizer's thread pools oversubscribe the CPU (measured 5x slower on 2 cores)
            int threads = Math.max(1, Runtime.getRuntime().availableProcessors() / workers);
            for (int r = 0; r < workers; r++) {
                children.add(new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Dai.djl.offline=true",
                        "-Dai.djl.pytorch.num_threads=" + threads, "-Dai.djl.pytorch.num_interop_threads=1",
                        "-Ddreamcluster.optimizer.threads=" + threads,
                        "-cp", System.getProperty("java.class.path"), Main.class.getName(), "worker",
                        "--join", bind.host() + ":" + port, "--bind", bind.host() + ":0")
                        .redirectErrorStream(true).redirectOutput(outDir.resolve("worker-" + r + ".log").toFile()).start());
            }
            System.err.println("coordinator on " + bind.host() + ":" + port + ", " + workers + " workers starting (logs in "
                    + outDir.resolve("worker-*.log") + ")");
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
