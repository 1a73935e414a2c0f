package dev.dreamcluster.cli;

import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.config.ConfigResolver;
import dev.dreamcluster.config.Json;
import dev.dreamcluster.config.ResolvedConfigJson;
import dev.dreamcluster.config.ResolvedTrainingConfig;
import dev.dreamcluster.model.DiffusersFolder;
import dev.dreamcluster.model.Presets;
import dev.dreamcluster.safetensors.DType;
import dev.dreamcluster.worker.data.SyntheticDataset;
import dev.dreamcluster.worker.train.ComputeConfig;
import dev.dreamcluster.worker.train.StepResult;
import dev.dreamcluster.worker.train.TrainConfig;
import dev.dreamcluster.worker.train.TrainingRun;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code dreamcluster train}: fine-tune a diffusers model on an EveryDream dataset. */
@Command(name = "train", mixinStandardHelpOptions = true,
        description = "Train (EveryDream2 train.json + optimizer.json). Writes metrics.jsonl, checkpoints/ and final/ under out.")
final class TrainCommand implements Callable<Integer> {
    private static final Logger LOG = LoggerFactory.getLogger(TrainCommand.class);

    @Option(names = "--config", required = true, paramLabel = "train.json")
    Path config;

    @Mixin
    OptimizerFlags flags;

    @Option(names = "--max_steps", paramLabel = "K", description = "optimizer updates to run")
    Integer maxSteps;

    @Option(names = "--out", paramLabel = "DIR", description = "output folder (default: train.json's out)")
    Path out;

    @Option(names = "--resume", paramLabel = "CKPT", description = "continue exactly from a checkpoint folder")
    Path resume;

    @Mixin
    DeviceOptions device = new DeviceOptions();

    @Option(names = "--workers", paramLabel = "N", defaultValue = "1", description = "worker processes (this build: 1)")
    int workers;

    @Option(names = {"--seed"}, paramLabel = "N")
    Long seed;

    @Option(names = "--coordinator_bind", paramLabel = "HOST:PORT", defaultValue = "127.0.0.1:0",
            description = "cluster address of the embedded coordinator (with --workers > 1), for a monitor's --seed")
    String coordinatorBind;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        if (!Files.isRegularFile(config)) {
            throw new ConfigError("--config: " + Json.quote(config.toString()) + " does not exist or is not a file");
        }
        if (workers < 1 || workers > 64) {
            throw ConfigError.invalid("--workers", Integer.toString(workers), "1..64 local worker processes");
        }
        if (workers > 1 && resume != null) {
            throw ConfigError.invalid("--resume", Json.quote(resume.toString()),
                    "resume runs on one process (--workers 1); its optimizer state is re-sharded from any worker count");
        }
        if (resume != null && !Files.isRegularFile(resume.resolve("trainer_state.json"))) {
            throw new ConfigError("--resume: " + Json.quote(resume.toString()) + " is not a checkpoint (no trainer_state.json)");
        }
        device.apply(); // before DJL loads: a GPU needs the CUDA libtorch
        Map<String, Object> overrides = new HashMap<>();
        overrides.put("max_steps", maxSteps);
        overrides.put("seed", seed);
        overrides.put("out", out == null ? null : out.toAbsolutePath().toString());
        TrainConfig cfg = TrainConfig.load(config, overrides);
        ensureExampleInputs(cfg);
        int layers = DiffusersFolder.read(cfg.model()).textEncoder().numHiddenLayers();
        ResolvedTrainingConfig opt = ConfigResolver.load(config, flags.toFlags(), layers);
        LOG.info("train config {}", cfg.toJson());
        LOG.info("optimizer config {}", ResolvedConfigJson.write(opt));
        for (String w : opt.warnings()) {
            spec.commandLine().getErr().println("warning: " + w);
        }
        spec.commandLine().getErr().flush();
        if (workers > 1) {
            String[] b = Nodes.hostPort(coordinatorBind, "--coordinator_bind");
            return new EmbeddedCluster(config.toAbsolutePath(), cfg, workers, b[0], Integer.parseInt(b[1])).withDevice(device)
                    .run(spec.commandLine().getOut(), spec.commandLine().getErr());
        }
        StepResult last = new TrainingRun(cfg, opt, resume, System.err, ComputeConfig.load(config, device.overrides())).run();
        spec.commandLine().getOut().printf("done: %d steps, last loss %.4f, val_loss %.4f; model in %s%n", last == null ? 0 : last.step(),
                last == null ? Double.NaN : last.loss(), last == null ? Double.NaN : last.valLoss(), cfg.out().resolve("final"));
        spec.commandLine().getOut().flush();
        return 0;
    }

    /**
     * The shipped tiny example generates its model and dataset on first use (no download ever):
     * only when the folders are missing and the model folder's name says it is the tiny preset's.
     */
    static void ensureExampleInputs(TrainConfig cfg) {
        if (!Files.exists(cfg.model()) && cfg.model().getFileName().toString().startsWith("tiny-model")) {
            DiffusersFolder.writeRandom(cfg.model(), Presets.TINY, 0, DType.F32);
            LOG.info("generated the tiny model in {}", cfg.model());
        }
        if (!Files.exists(cfg.dataRoot()) && cfg.dataRoot().getFileName().toString().startsWith("shapes")) {
            SyntheticDataset.write(cfg.dataRoot(), 48, 64, 0);
            LOG.info("generated the synthetic dataset in {}", cfg.dataRoot());
        }
        if (!Files.isDirectory(cfg.model())) {
            throw new ConfigError("resume_ckpt: " + Json.quote(cfg.model().toString()) + " is not a diffusers model folder");
        }
        if (!Files.isDirectory(cfg.dataRoot())) {
            throw new ConfigError("data_root: " + Json.quote(cfg.dataRoot().toString()) + " is not a folder");
        }
    }
}
