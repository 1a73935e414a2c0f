package dev.dreamcluster.cli;

import akka.actor.typed.ActorSystem;
import dev.dreamcluster.config.RunConfig;
import dev.dreamcluster.coordinator.CoordinatorSettings;
import dev.dreamcluster.monitoring.MonitoringSettings;
import dev.dreamcluster.protocol.TrainingEvent;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code dreamcluster coordinator}: the seed node of a real cluster, and the one owner of the run: it
 * resolves train.json + optimizer.json + flags once and sends the result to every worker in the plan.
 * Workers join it with {@code dreamcluster worker --join HOST:PORT} and need only their own copies of
 * the model and the data (checked against the plan hash), never the configs.
 */
@Command(name = "coordinator", mixinStandardHelpOptions = true,
        description = "Run the coordinator (seed node) of a training cluster; exits when the run ends (0 ok, 3 failed).")
final class CoordinatorCommand implements Callable<Integer> {
    @Mixin
    RunFlags run;

    @Option(names = "--bind", required = true, paramLabel = "HOST:PORT", description = "where the cluster port listens")
    String bind;

    @Option(names = "--advertise", paramLabel = "HOST:PORT",
            description = "the address workers dial as --join (default: --bind; set it behind NAT or in containers)")
    String advertise;

    @Option(names = "--http", paramLabel = "HOST:PORT", defaultValue = "127.0.0.1:0",
            description = "monitoring HTTP server: dashboard, status API, Prometheus metrics (port 0: any free port)")
    String http;

    @picocli.CommandLine.Mixin
    ClusterFormation formation;

    @picocli.CommandLine.Mixin
    ClusterKeyFlags cluster;

    @Option(names = "--collective", paramLabel = "K", description = "auto (NCCL when every worker offers it, else the ring), ring or nccl")
    String collective;

    @Option(names = "--preemption_grace", paramLabel = "S", defaultValue = "25",
            description = "on SIGTERM, seconds to wait while every worker commits a checkpoint after the step in flight, before"
                    + " the run stops and the resume command is printed (default 25; 0: stop at once)")
    int preemptionGrace;

    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        if (preemptionGrace < 0 || preemptionGrace > WorkerCommand.MAX_GRACE) {
            throw dev.dreamcluster.config.ConfigError.invalid("--preemption_grace", Integer.toString(preemptionGrace),
                    "0 (stop at once) or 1.." + WorkerCommand.MAX_GRACE + " seconds");
        }
        ClusterKeys.NodeKeys keys = cluster.resolve();
        Nodes.HostPort b = Nodes.hostPort(bind, "--bind");
        Nodes.HostPort a = Nodes.hostPort(advertise, "--advertise");
        RunConfig cfg = run.resolve();
        for (String w : cfg.optimizer().warnings()) {
            System.err.println("warning: " + w);
        }
        Nodes.HostPort h = Nodes.hostPort(http, "--http");
        try (RunFolder folder = run.claim(cfg, new java.io.PrintWriter(System.err, true))) {
            return coordinate(cfg, keys, b, a, h);
        }
    }

    private int coordinate(RunConfig cfg, ClusterKeys.NodeKeys keys, Nodes.HostPort b, Nodes.HostPort a, Nodes.HostPort h)
            throws Exception {
        java.util.Map<String, Object> flags = new java.util.HashMap<>();
        flags.put("collective", collective);
        CoordinatorSettings settings = run.coordinatorSettings(cfg, 1,
                dev.dreamcluster.worker.train.ComputeConfig.fromRun(cfg.compute(), flags).collective());
        CompletableFuture<TrainingEvent.RunFinished> done = new CompletableFuture<>();
        ActorSystem<Void> system = Nodes.startCoordinator(settings, b, a, new MonitoringSettings(h.host(), h.port(), cfg.train().out()),
                done, new java.io.PrintWriter(System.err, true), keys, formation.bootstrap(), formation.config((a != null ? a : b).host()) + WorkerCommand.graceConfig(preemptionGrace));
        formation.start(system);
        Nodes.endWhenTerminated(system, settings.runId(), done); // a downed or quarantined coordinator node never hangs this command
        Nodes.stopAtCheckpointOnSigterm(system, settings, done, preemptionGrace,
                end -> ResumeLine.of("coordinator", spec.commandLine().getParseResult().originalArgs(), end));
        try {
            String seed = (a != null ? a : b).toString();
            System.err.println("coordinator on " + seed + ": waiting for " + settings.minWorkers() + " workers (dreamcluster worker --join "
                    + seed + " --model DIR --data DIR)");
            TrainingEvent.RunFinished end = done.get(7, TimeUnit.DAYS);
            if (end.inputError()) {
                System.err.println("error: " + end.message()); // a worker's bad input: one line, exit 2, as train prints it
                return end.exitStatus();
            }
            if (!end.ok()) {
                System.err.println("error: run failed: " + end.message());
                return end.exitStatus(); // 3; stopped workers end on their own; one that was never planned ends when this node leaves
            }
            Nodes.awaitWorkersLeft(system, java.time.Duration.ofSeconds(15)); // every rank has finished: they leave first
            return 0;
        } finally {
            system.terminate();
        }
    }
}
