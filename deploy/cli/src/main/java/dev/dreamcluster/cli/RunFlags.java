package dev.dreamcluster.cli;

import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.config.ConfigFiles;
import dev.dreamcluster.config.ConfigResolver;
import dev.dreamcluster.config.Json;
import dev.dreamcluster.config.RunConfig;
import dev.dreamcluster.model.DiffusersFolder;
import dev.dreamcluster.model.Presets;
import dev.dreamcluster.safetensors.DType;
import dev.dreamcluster.worker.data.SyntheticDataset;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * The flags that decide a run, shared by {@code train} (with or without --workers) and {@code
 * coordinator}, and the one place they are resolved into a {@link RunConfig}. Names are train.json's
 * keys; a flag beats train.json.
 */
final class RunFlags {
    private static final Logger LOG = LoggerFactory.getLogger(RunFlags.class);

    @Option(names = "--config", required = true, paramLabel = "train.json")
    Path config;

    /** train.json and optimizer.json as {@link #resolve} read them (once), for the coordinator's settings. */
    private ConfigFiles files;

    @Mixin
    OptimizerFlags optimizer;

    @Option(names = "--max_steps", paramLabel = "K", description = "optimizer updates to run")
    Integer maxSteps;

    @Option(names = "--out", paramLabel = "DIR", description = "output folder (default: train.json's out)")
    Path out;

    @Option(names = "--resume", paramLabel = "CKPT", description = "continue exactly from a checkpoint folder (any worker count)")
    Path resume;

    @Option(names = "--seed", paramLabel = "N", description = "base of every random draw (default: train.json's seed, 555)")
    Long seed;

    @Option(names = "--overwrite", description = "replace the outputs of an earlier run in out (metrics, checkpoints, final)")
    boolean overwrite;

    @Option(names = "--keep_last_n_checkpoints", paramLabel = "N", description = "keep only the newest N checkpoints (default: all)")
    Integer keepLastNCheckpoints;

    @Option(names = "--max_skipped_steps", paramLabel = "N",
            description = "stop the run (exit 3) after more than N consecutive steps skipped on non-finite gradients (default: 3; 20 with fp16)")
    Integer maxSkippedSteps;

    @Option(names = "--verbose", description = "show INFO log lines on stderr too (they always go to <out>/train.log)")
    boolean verbose;

    @Option(names = "--min_workers", paramLabel = "N",
            description = "cluster runs: workers to wait for, and the fewest a generation may continue with (train.json min_workers)")
    Integer minWorkers;

    @Option(names = "--max_workers", paramLabel = "N",
            description = "cluster runs: the most workers a generation takes; more join at the next checkpoint (train.json max_workers)")
    Integer maxWorkers;

    @Option(names = "--join_timeout", paramLabel = "S", description = "cluster runs: seconds for min_workers to join (default 1800)")
    Integer joinTimeout;

    @Option(names = "--rejoin_timeout", paramLabel = "S",
            description = "cluster runs: seconds to wait for new workers after a shrink below min_workers (default 600)")
    Integer rejoinTimeout;

    /**
     * The coordinator's settings for this run: the plan manifest of this node's model and data for a
     * world of min_workers, the bounds of every wait. {@code defaultWorkers}: the embedded cluster's --workers (> 1),
     * or 1 for the coordinator command.
     */
    dev.dreamcluster.coordinator.CoordinatorSettings coordinatorSettings(RunConfig cfg, int defaultWorkers) {
        com.fasterxml.jackson.databind.JsonNode j = files.train();
        int min = count(minWorkers, "--min_workers", j, "min_workers", defaultWorkers);
        int start = Math.max(min, defaultWorkers);
        int max = count(maxWorkers, "--max_workers", j, "max_workers", start);
        if (max < start) {
            throw new ConfigError("--max_workers / max_workers: " + max + " is less than " + start + " (allowed: max_workers >= "
                    + "min_workers and >= --workers)");
        }
        var timeouts = new dev.dreamcluster.coordinator.CoordinatorSettings.Timeouts(
                java.time.Duration.ofSeconds(count(joinTimeout, "--join_timeout", j, "join_timeout", 1800)),
                // the embedded cluster starts no new workers: below min_workers it stops at once unless told to wait
                java.time.Duration.ofSeconds(rejoinTimeout == null && !j.hasNonNull("rejoin_timeout") && defaultWorkers > 1 ? 0
                        : count(rejoinTimeout, "--rejoin_timeout", j, "rejoin_timeout", 600)),
                dev.dreamcluster.coordinator.CoordinatorSettings.Timeouts.DEFAULT.accept(),
                dev.dreamcluster.coordinator.CoordinatorSettings.Timeouts.DEFAULT.abort());
        long runId = System.nanoTime() ^ ProcessHandle.current().pid();
        Path resumeAbs = resume == null ? null : resume.toAbsolutePath().normalize();
        dev.dreamcluster.plan.PlanManifest manifest = dev.dreamcluster.plan.PlanManifest.compute(cfg, start, resumeAbs);
        LOG.info("plan {}: {} entries", manifest.hash(), manifest.entries().size());
        return new dev.dreamcluster.coordinator.CoordinatorSettings(min, start, max, runId, manifest.hash(), manifest.lines(), cfg.toJson(),
                resumeAbs == null ? "" : resumeAbs.toString(), cfg.train().out(), timeouts);
    }

    dev.dreamcluster.coordinator.CoordinatorSettings coordinatorSettings(RunConfig cfg, int defaultWorkers,
            dev.dreamcluster.device.CollectiveKind collective) {
        var s = coordinatorSettings(cfg, defaultWorkers);
        return new dev.dreamcluster.coordinator.CoordinatorSettings(s.minWorkers(), s.startWorkers(), s.maxWorkers(), s.runId(),
                s.planHash(), s.manifest(), s.runConfig(), s.resume(), s.out(), s.timeouts(), collective);
    }

    /** A count from a flag, else train.json, else the default; 1..100000. */
    private int count(Integer flag, String flagName, com.fasterxml.jackson.databind.JsonNode j, String key, int def) {
        long v;
        String where;
        if (flag != null) {
            v = flag;
            where = flagName;
        } else if (j.hasNonNull(key)) {
            com.fasterxml.jackson.databind.JsonNode n = j.get(key);
            if (!n.canConvertToExactIntegral()) {
                throw ConfigError.invalid(config + " at " + key, n.toString(), "a whole number in 1..100000");
            }
            v = n.longValue();
            where = config + " at " + key;
        } else {
            return def;
        }
        if (v < 1 || v > 100_000) {
            throw ConfigError.invalid(where, Long.toString(v), "a whole number in 1..100000");
        }
        return (int) v;
    }

    /**
     * Claims the run's output folder (one run per folder; an earlier run's outputs need --resume or
     * --overwrite) for as long as the returned lock is open.
     */
    RunFolder claim(RunConfig cfg, java.io.PrintWriter err) {
        return RunFolder.claim(cfg.train().out(), out != null ? "--out" : config + " at out", resume, overwrite, err);
    }

    /** Checks the files, generates the shipped example's inputs if missing, resolves, logs the result once. */
    RunConfig resolve() {
        if (!Files.isRegularFile(config)) {
            throw new ConfigError("--config: " + Json.quote(config.toString()) + " does not exist or is not a file");
        }
        if (resume != null && !Files.isRegularFile(resume.resolve("trainer_state.json"))) {
            throw new ConfigError("--resume: " + Json.quote(resume.toString()) + " is not a checkpoint (no trainer_state.json)");
        }
        Map<String, Object> overrides = new HashMap<>();
        overrides.put("max_steps", maxSteps);
        overrides.put("seed", seed);
        overrides.put("out", out == null ? null : out.toAbsolutePath().toString());
        overrides.put("keep_last_n_checkpoints", keepLastNCheckpoints);
        overrides.put("max_skipped_steps", maxSkippedSteps);
        if (verbose) {
            RunLog.verbose();
        }
        Path trainJson = config.toAbsolutePath();
        files = ConfigFiles.read(trainJson, optimizer.toFlags().optimizerConfig()); // the one read of each file
        dev.dreamcluster.config.TrainConfig train = dev.dreamcluster.config.TrainConfig.of(files, overrides);
        ensureExampleInputs(train.model(), train.dataRoot());
        int layers = DiffusersFolder.read(resume != null ? resume.resolve("model") : train.model()).textEncoder().numHiddenLayers();
        RunConfig run = new RunConfig(train, ConfigResolver.resolve(files, optimizer.toFlags(), layers),
                RunConfig.computeKeys(files.train(), files.optimizer()));
        dev.dreamcluster.worker.train.ComputeConfig.of(files, java.util.Map.of()); // bad device/amp keys: one line naming the file, now
        LOG.info("run config {}", run.toJson());
        return run;
    }

    /**
     * The shipped tiny example generates its model and dataset on first use (no download ever):
     * only when the folders are missing and the folder's name says it is the tiny example's.
     */
    static void ensureExampleInputs(Path model, Path dataRoot) {
        if (!Files.exists(model) && model.getFileName().toString().startsWith("tiny-model")) {
            // the example's own preset: a random UNet and text encoder to train, and the shapes VAE shipped
            // beside the model folder (examples/tiny/shapes-vae, made by train-vae), so samples show shapes
            Path vae = dev.dreamcluster.worker.example.ExampleModel.shippedVae(model);
            dev.dreamcluster.worker.example.ExampleModel.write(model, Presets.TINY_SHAPES, vae, 0, DType.F32);
            if (vae == null) {
                LOG.warn("generated the tiny model in {} with a random VAE (no {} folder beside it): its samples will show noise",
                        model, dev.dreamcluster.worker.example.ExampleModel.VAE_FOLDER);
            } else {
                LOG.info("generated the tiny model in {} (the VAE from {})", model, vae);
            }
        } else if (Files.isDirectory(model) && model.getFileName().toString().equals("tiny-model")
                && dev.dreamcluster.worker.example.ExampleModel.shippedVae(model) != null
                && DiffusersFolder.read(model).unet().equals(Presets.TINY.unet)) {
            LOG.warn("{} is the tiny example's older model (random VAE, noise samples); delete it to have the example's model"
                    + " generated with the shapes VAE", model);
        }
        if (!Files.exists(dataRoot) && dataRoot.getFileName().toString().startsWith("shapes")) {
            // 480 pictures (most of the 126 colour, shape and background combinations): a 300-step run then
            // learns what each colour word means rather than 40 pictures by heart
            SyntheticDataset.write(dataRoot, 480, 64, 0);
            LOG.info("generated the synthetic dataset in {}", dataRoot);
        } else if (Files.isDirectory(dataRoot) && dataRoot.getFileName().toString().equals("shapes")
                && dev.dreamcluster.worker.example.ExampleModel.shippedVae(model) != null) {
            try (java.util.stream.Stream<Path> files = Files.walk(dataRoot)) {
                long images = files.filter(f -> f.toString().endsWith(".png")).count();
                if (images < 480) {
                    LOG.warn("{} holds {} images, the tiny example's older dataset; delete it to have the example's 480"
                            + " generated", dataRoot, images);
                }
            } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException("cannot list " + dataRoot, e);
            }
        }
        dev.dreamcluster.model.ldm.LdmCheckpoint.refusePickle(model);
        if (!Files.isDirectory(model) && !Files.isRegularFile(model)) {
            throw new ConfigError("resume_ckpt: " + Json.quote(model.toString())
                    + " is not a diffusers model folder or a .safetensors single file");
        }
        if (!Files.isDirectory(dataRoot)) {
            throw new ConfigError("data_root: " + Json.quote(dataRoot.toString()) + " is not a folder");
        }
    }
}
