package dev.dreamcluster.cli;

import akka.actor.typed.ActorSystem;
import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.config.Json;
import dev.dreamcluster.coordinator.CoordinatorSettings;
import dev.dreamcluster.protocol.RunPlan;
import dev.dreamcluster.protocol.TrainingEvent;
import dev.dreamcluster.worker.node.Worker;
import dev.dreamcluster.worker.train.TrainConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code dreamcluster coordinator}: the seed node of a real cluster. Workers join it with
 * {@code dreamcluster worker --seed HOST:PORT}; the run starts when --min_workers have joined. Every
 * node must see train.json, the model and the data at the same paths (a shared volume).
 */
@Command(name = "coordinator", mixinStandardHelpOptions = true,
        description = "Run the coordinator (seed node) of a training cluster; exits when the run ends (0 ok, 3 failed).")
final class CoordinatorCommand implements Callable<Integer> {
    @Option(names = "--config", required = true, paramLabel = "train.json")
    Path config;

    @Option(names = "--bind", required = true, paramLabel = "HOST:PORT", description = "the address workers use as --seed")
    String bind;

    @Option(names = "--min_workers", paramLabel = "N", defaultValue = "1")
    int minWorkers;

    @Option(names = "--max_steps", paramLabel = "K")
    Integer maxSteps;

    @Option(names = "--collective", paramLabel = "K", description = "auto (NCCL when every worker offers it, else the ring), ring or nccl")
    String collective;

    @Override
    public Integer call() throws Exception {
        if (!Files.isRegularFile(config)) {
            throw new ConfigError("--config: " + Json.quote(config.toString()) + " does not exist or is not a file");
        }
        if (minWorkers < 1) {
            throw ConfigError.invalid("--min_workers", Integer.toString(minWorkers), "a number of workers >= 1");
        }
        String[] b = Nodes.hostPort(bind, "--bind");
        Path trainJson = config.toAbsolutePath();
        java.util.HashMap<String, Object> overrides = new java.util.HashMap<>();
        overrides.put("max_steps", maxSteps);
        TrainConfig cfg = TrainConfig.load(trainJson, overrides);
        int steps = cfg.maxSteps() == null ? 0 : cfg.maxSteps();
        long runId = System.nanoTime() ^ ProcessHandle.current().pid();
        String hash = Worker.localPlanHash(new RunPlan(runId, "", Collections.nCopies(minWorkers, b[0] + ":0"), trainJson.toString(),
                steps, cfg.out().toString()));
        java.util.HashMap<String, Object> compute = new java.util.HashMap<>();
        compute.put("collective", collective);
        CoordinatorSettings settings = new CoordinatorSettings(minWorkers, runId, hash, trainJson, steps, cfg.out(),
                dev.dreamcluster.worker.train.ComputeConfig.load(trainJson, compute).collective());
        CompletableFuture<TrainingEvent.RunFinished> done = new CompletableFuture<>();
        ActorSystem<Void> system = Nodes.startCoordinator(settings, b[0], Integer.parseInt(b[1]), done);
        try {
            System.err.println("coordinator on " + bind + ": waiting for " + minWorkers + " workers (dreamcluster worker --seed " + bind + ")");
            return done.get(7, TimeUnit.DAYS).ok() ? 0 : 3;
        } finally {
            system.terminate();
        }
    }
}
