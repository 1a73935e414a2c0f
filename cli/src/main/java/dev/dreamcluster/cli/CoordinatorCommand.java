package dev.dreamcluster.cli;

import akka.actor.typed.ActorSystem;
import dev.dreamcluster.config.RunConfig;
import dev.dreamcluster.coordinator.CoordinatorSettings;
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

    @Override
    public Integer call() throws Exception {
        Nodes.HostPort b = Nodes.hostPort(bind, "--bind");
        Nodes.HostPort a = Nodes.hostPort(advertise, "--advertise");
        RunConfig cfg = run.resolve();
        for (String w : cfg.optimizer().warnings()) {
            System.err.println("warning: " + w);
        }
        CoordinatorSettings settings = run.coordinatorSettings(cfg, 1);
        CompletableFuture<TrainingEvent.RunFinished> done = new CompletableFuture<>();
        ActorSystem<Void> system = Nodes.startCoordinator(settings, b, a, done, new java.io.PrintWriter(System.err, true));
        try {
            String seed = (a != null ? a : b).toString();
            System.err.println("coordinator on " + seed + ": waiting for " + settings.minWorkers() + " workers (dreamcluster worker --join "
                    + seed + " --model DIR --data DIR)");
            return done.get(7, TimeUnit.DAYS).ok() ? 0 : 3;
        } finally {
            system.terminate();
        }
    }
}
