package dev.dreamcluster.cli;

import akka.actor.typed.ActorSystem;
import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.config.RunConfig;
import dev.dreamcluster.coordinator.CoordinatorSettings;
import dev.dreamcluster.plan.PlanManifest;
import dev.dreamcluster.protocol.TrainingEvent;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
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
    private static final Logger LOG = LoggerFactory.getLogger(CoordinatorCommand.class);

    @Mixin
    RunFlags run;

    @Option(names = "--bind", required = true, paramLabel = "HOST:PORT", description = "where the cluster port listens")
    String bind;

    @Option(names = "--advertise", paramLabel = "HOST:PORT",
            description = "the address workers dial as --join (default: --bind; set it behind NAT or in containers)")
    String advertise;

    @Option(names = "--min_workers", paramLabel = "N", defaultValue = "1", description = "workers to wait for (the world size)")
    int minWorkers;

    @picocli.CommandLine.Mixin
    ClusterFormation formation;

    @Override
    public Integer call() throws Exception {
        if (minWorkers < 1 || minWorkers > 4096) {
            throw ConfigError.invalid("--min_workers", Integer.toString(minWorkers), "a number of workers in 1..4096");
        }
        Nodes.HostPort b = Nodes.hostPort(bind, "--bind");
        Nodes.HostPort a = Nodes.hostPort(advertise, "--advertise");
        RunConfig cfg = run.resolve();
        for (String w : cfg.optimizer().warnings()) {
            System.err.println("warning: " + w);
        }
        CoordinatorSettings settings = settings(cfg, run.resume, minWorkers);
        CompletableFuture<TrainingEvent.RunFinished> done = new CompletableFuture<>();
        ActorSystem<Void> system = Nodes.startCoordinator(settings, b, a, done, formation.bootstrap(),
                formation.config((a != null ? a : b).host()));
        formation.start(system);
        try {
            String seed = (a != null ? a : b).toString();
            System.err.println("coordinator on " + seed + ": waiting for " + minWorkers + " workers (dreamcluster worker --join "
                    + seed + " --model DIR --data DIR)");
            return done.get(7, TimeUnit.DAYS).ok() ? 0 : 3;
        } finally {
            system.terminate();
        }
    }

    /** The run's settings: the plan manifest of this node's model and data for a world of {@code workers}. */
    static CoordinatorSettings settings(RunConfig cfg, Path resume, int workers) {
        long runId = System.nanoTime() ^ ProcessHandle.current().pid();
        Path resumeAbs = resume == null ? null : resume.toAbsolutePath().normalize();
        PlanManifest manifest = PlanManifest.compute(cfg, workers, resumeAbs);
        LOG.info("plan {}: {} entries", manifest.hash(), manifest.entries().size());
        return new CoordinatorSettings(workers, runId, manifest.hash(), manifest.lines(), cfg.toJson(),
                resumeAbs == null ? "" : resumeAbs.toString(), cfg.train().out());
    }
}
