package dev.dreamcluster.cli;

import akka.actor.typed.ActorSystem;
import akka.cluster.typed.Cluster;
import dev.dreamcluster.config.RunConfig;
import dev.dreamcluster.coordinator.CoordinatorSettings;
import dev.dreamcluster.monitoring.MonitoringSettings;
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
    private final MonitoringSettings http;
    private final Path keysDir;
    private DeviceOptions device = new DeviceOptions();
    private boolean pinned;
    private int preemptionGrace = 25;
    private java.util.function.Function<TrainingEvent.RunFinished, String> resumeLine = end -> "resume: " + end.message();

    /**
     * @param workers local worker JVMs to start (at least the settings' min_workers)
     * @param keysDir the node keys every member uses, or null for a throwaway CA made for this run
     */
    EmbeddedCluster(RunConfig run, CoordinatorSettings settings, int workers, Nodes.HostPort bind, MonitoringSettings http,
            Path keysDir) {
        this.run = run;
        this.keysDir = keysDir;
        this.settings = settings;
        this.http = http;
        this.workers = workers;
        this.bind = bind;
    }

    /** The workers' --device/--collective and the PYTORCH_* settings (already applied to this JVM). */
    /** Pin local worker r to core r mod cores with taskset (Linux), so a benchmark can slow one worker by loading its core. */
    EmbeddedCluster withPinning(boolean pin) {
        this.pinned = pin;
        return this;
    }

    /** The workers' --preemption_grace: how long a worker given SIGTERM stays while the run commits a checkpoint. */
    EmbeddedCluster withPreemptionGrace(int seconds) {
        this.preemptionGrace = seconds;
        return this;
    }

    /** What a SIGTERM'd launcher prints once the run stopped at a checkpoint ({@link ResumeLine}). */
    EmbeddedCluster withResumeLine(java.util.function.Function<TrainingEvent.RunFinished, String> line) {
        this.resumeLine = line;
        return this;
    }

    EmbeddedCluster withDevice(DeviceOptions d) {
        this.device = d;
        return this;
    }

    int run(java.io.PrintWriter out, java.io.PrintWriter err) throws Exception {
        Files.createDirectories(run.train().out());
        ClusterKeys.NodeKeys keys = keysDir != null ? ClusterKeys.load(keysDir, "--keys") : ClusterKeys.throwaway();
        try {
            return run(keys, out, err);
        } finally {
            if (keysDir == null) {
                ClusterKeys.deleteThrowaway(keys);
            }
        }
    }

    private int run(ClusterKeys.NodeKeys keys, java.io.PrintWriter out, java.io.PrintWriter err) throws Exception {
        Path outDir = run.train().out();
        CompletableFuture<TrainingEvent.RunFinished> done = new CompletableFuture<>();
        int heartbeatPause = Nodes.embeddedHeartbeatPause(workers, Runtime.getRuntime().availableProcessors());
        ActorSystem<Void> system = Nodes.startCoordinator(settings, bind, null, http, done, err, keys, false,
                WorkerCommand.graceConfig(preemptionGrace) + Nodes.heartbeatConfig(heartbeatPause, "--workers"));
        Nodes.endWhenTerminated(system, settings.runId(), done); // a downed or quarantined coordinator node never hangs the launcher
        Nodes.stopAtCheckpointOnSigterm(system, settings, done, preemptionGrace, resumeLine);
        int port = Cluster.get(system).selfMember().address().getPort().orElseThrow();
        List<Process> children = new ArrayList<>();
        Thread hook = new Thread(() -> {
            // SIGTERM or Ctrl-C: the coordinator's shutdown task stops the run at a checkpoint first (the
            // workers commit it); only then, or past the grace, are the workers stopped
            try {
                done.get(preemptionGrace + 5L, TimeUnit.SECONDS);
                for (Process p : children) {
                    p.waitFor(10, TimeUnit.SECONDS); // told to stop by the run's end: they leave the cluster on their own
                }
            } catch (Exception timedOutOrInterrupted) {
                // stop them now
            }
            children.forEach(Process::destroyForcibly);
        });
        Runtime.getRuntime().addShutdownHook(hook); // Ctrl-C stops the workers too
        try {
            // local workers share this machine's cores: give each its share, or libtorch's and the
            // optimizer's thread pools oversubscribe the CPU (measured 5x slower on 2 cores)
            int threads = Math.max(1, Runtime.getRuntime().availableProcessors() / workers);
            for (int r = 0; r < workers; r++) {
                List<String> jvm = new ArrayList<>(List.of("-Dai.djl.offline=true",
                        "-Dai.djl.pytorch.num_threads=" + threads, "-Dai.djl.pytorch.num_interop_threads=1"));
                jvm.addAll(device.jvmFlags()); // PYTORCH_LIBRARY_PATH/VERSION/FLAVOR for a GPU
                List<String> cmd = new ArrayList<>(pinned ? List.of("taskset", "-c",
                        Integer.toString(r % Runtime.getRuntime().availableProcessors())) : List.of());
                cmd.addAll(ChildJvm.command(jvm.toArray(String[]::new)));
                cmd.addAll(List.of(Main.class.getName(), "worker", "--join", bind.host() + ":" + port, "--bind", bind.host() + ":0",
                        "--keys", keys.dir().toString(), "--optimizer_threads", Integer.toString(threads),
                        "--preemption_grace", Integer.toString(preemptionGrace), "--heartbeat_pause", Integer.toString(heartbeatPause)));
                cmd.addAll(device.workerFlags(r, workers)); // gpu:N becomes gpu:(N + r): one GPU per worker
                ProcessBuilder pb = ChildJvm.builder(cmd).redirectErrorStream(true).redirectOutput(outDir.resolve("worker-" + r + ".log").toFile());
                pb.environment().putIfAbsent("DREAMCLUSTER_LOG_LEVEL", "INFO"); // a worker's log file shows its INFO lines
                children.add(pb.start());
            }
            System.err.println("coordinator on " + bind.host() + ":" + port + ", " + workers + " workers starting (logs in "
                    + outDir.resolve("worker-*.log") + ")");
            endWhenEveryWorkerExited(children, settings.runId(), outDir, done);
            TrainingEvent.RunFinished end = done.get(7, TimeUnit.DAYS);
            // The run is over: every rank has written what it owns (RunEnded comes after the final
            // save), so a worker JVM still leaving the cluster after 20 s is stopped. Its exit is
            // sometimes slow (Akka's shutdown phases waiting on peers that already left, or Artery's
            // TLS stall of docs/known-defects.md: seen taking up to the whole wait in CI).
            for (Process p : children) {
                if (!p.waitFor(20, TimeUnit.SECONDS)) {
                    p.destroyForcibly();
                }
            }
            Nodes.downWorkers(system); // their JVMs are gone: none may hold this node's own leave (see Nodes.awaitWorkersLeft)
            if (!end.ok()) {
                err.println("error: " + (end.inputError() ? "" : "run failed: ") + end.message());
                err.flush();
                return end.exitStatus() != 0 ? end.exitStatus() : TrainingEvent.RunFinished.EXIT_HALTED;
            }
            out.println("done: " + end.message());
            out.flush();
            return 0;
        } finally {
            children.forEach(Process::destroyForcibly);
            system.terminate();
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException shuttingDown) {
                // SIGTERM: the hook is running, and waits for this run's end
            }
        }
    }

    /**
     * Ends the run when every local worker JVM has exited and the run has not finished 10 s later
     * (a worker's RunEnded reaches the coordinator before its JVM exits, so a finished run completes
     * {@code done} first). Without it, workers that die before joining (a broken class path, a
     * killed process) left the launcher waiting for join_timeout (30 min by default): seen once.
     */
    private static void endWhenEveryWorkerExited(List<Process> children, long runId, Path outDir,
            CompletableFuture<TrainingEvent.RunFinished> done) {
        CompletableFuture.allOf(children.stream().map(Process::onExit).toArray(CompletableFuture[]::new))
                .thenRunAsync(() -> done.complete(new TrainingEvent.RunFinished(runId, false, "every local worker JVM exited"
                        + " before the run finished (exit statuses " + children.stream().map(p -> Integer.toString(p.exitValue())).toList()
                        + "; see " + outDir.resolve("worker-*.log") + ")", TrainingEvent.RunFinished.EXIT_HALTED)),
                        CompletableFuture.delayedExecutor(10, TimeUnit.SECONDS));
    }
}
