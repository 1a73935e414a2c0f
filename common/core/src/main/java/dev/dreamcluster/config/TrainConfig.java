package dev.dreamcluster.config;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Path;
import java.util.Map;

/**
 * The training keys of an EveryDream2 train.json (and DreamCluster's additions), resolved once:
 * flags beat train.json, which beats the defaults below. Paths in train.json are relative to its
 * folder. Optimizer keys are resolved separately ({@code ConfigResolver}).
 *
 * @param model the diffusers folder to fine-tune ({@code resume_ckpt})
 * @param maxSteps optimizer updates to run; null means max_epochs' worth
 * @param clipGradNorm max global L2 norm of the gradients, or null for no clipping
 * @param seed base of every random choice (data order, noise, timesteps, dropout)
 * @param valEveryNSteps validation every N optimizer steps (0: only at the end)
 * @param saveEveryNSteps checkpoint every N optimizer steps (0: off)
 * @param ckptEveryNMinutes checkpoint every N minutes (0: off)
 * @param latentCache encode each image once and keep its latent distribution in memory (the frozen
 *     VAE and the deterministic centre crop make this exact); costs 2 x 4 x h/8 x w/8 floats per image
 * @param keepLastNCheckpoints after each committed checkpoint, older ones beyond this many are
 *     deleted; null keeps all
 * @param features EveryDream2's loss, noise, augmentation, validation and EMA keys
 * @param outputs sample images, TensorBoard and the single-file final model ({@link OutputsConfig})
 * @param maxSkippedSteps more consecutive steps skipped on non-finite gradients than this stop the run
 *     (exit 3); null: 3, or 20 with fp16's GradScaler, whose back-off skips steps by design
 */
public record TrainConfig(Path dataRoot, Path model, Path out, int maxEpochs, Integer maxSteps, int batchSize,
        int gradAccum, long seed, int resolution, Double clipGradNorm, double condDropout, int saveEveryNEpochs,
        int saveEveryNSteps, double ckptEveryNMinutes, int valEveryNSteps, int valCount, double zeroFrequencyNoiseRatio,
        int clipSkip, boolean saveFullPrecision, int logStep, boolean latentCache, Integer keepLastNCheckpoints,
        TrainFeatures features, OutputsConfig outputs, Integer maxSkippedSteps) {
    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(TrainConfig.class);

    /** The basic keys only; every EveryDream2 feature at its default, every checkpoint kept. */
    public TrainConfig(Path dataRoot, Path model, Path out, int maxEpochs, Integer maxSteps, int batchSize, int gradAccum,
            long seed, int resolution, Double clipGradNorm, double condDropout, int saveEveryNEpochs, int saveEveryNSteps,
            double ckptEveryNMinutes, int valEveryNSteps, int valCount, double zeroFrequencyNoiseRatio, int clipSkip,
            boolean saveFullPrecision, int logStep, boolean latentCache) {
        this(dataRoot, model, out, maxEpochs, maxSteps, batchSize, gradAccum, seed, resolution, clipGradNorm, condDropout,
                saveEveryNEpochs, saveEveryNSteps, ckptEveryNMinutes, valEveryNSteps, valCount, zeroFrequencyNoiseRatio,
                clipSkip, saveFullPrecision, logStep, latentCache, null, TrainFeatures.DEFAULTS, OutputsConfig.NONE, null);
    }

    public TrainConfig {
        features = features == null ? TrainFeatures.DEFAULTS : features;
        if (maxEpochs < 1) {
            throw ConfigError.invalid("max_epochs", Integer.toString(maxEpochs), "a whole number >= 1");
        }
        if (maxSteps != null && maxSteps < 1) {
            throw ConfigError.invalid("max_steps", maxSteps.toString(), "a whole number >= 1");
        }
        if (batchSize < 1) {
            throw ConfigError.invalid("batch_size", Integer.toString(batchSize), "a whole number >= 1");
        }
        if (gradAccum < 1) {
            throw ConfigError.invalid("grad_accum", Integer.toString(gradAccum), "a whole number >= 1");
        }
        if (resolution < 64 || resolution % 64 != 0) {
            throw ConfigError.invalid("resolution", Integer.toString(resolution), "a multiple of 64, >= 64");
        }
        if (clipGradNorm != null && !(clipGradNorm > 0)) {
            throw ConfigError.invalid("clip_grad_norm", clipGradNorm.toString(), "a number > 0, or null for no clipping");
        }
        if (!(condDropout >= 0 && condDropout <= 1)) {
            throw ConfigError.invalid("cond_dropout", Double.toString(condDropout), "a probability in [0, 1]");
        }
        if (zeroFrequencyNoiseRatio < 0 || clipSkip < 0 || clipSkip > 4 || valCount < 0 || logStep < 1
                || saveEveryNEpochs < 0 || saveEveryNSteps < 0 || ckptEveryNMinutes < 0 || valEveryNSteps < 0) {
            throw new ConfigError("train config: zero_frequency_noise_ratio, val_count, save_*, ckpt_every_n_minutes and "
                    + "val_every_n_steps must be >= 0, clip_skip in 0..4, log_step >= 1");
        }
        if (maxSkippedSteps != null && maxSkippedSteps < 0) {
            throw ConfigError.invalid("max_skipped_steps", maxSkippedSteps.toString(), "a whole number >= 0, or null for the default");
        }
        if (keepLastNCheckpoints != null && keepLastNCheckpoints < 1) {
            throw ConfigError.invalid("keep_last_n_checkpoints", keepLastNCheckpoints.toString(), "a whole number >= 1, or null to keep all");
        }
    }

    /**
     * Keys that name where things are on one node, or only change what is printed: they never enter
     * the plan hash, and each node may set its own ({@code worker --model/--data/--out}).
     */
    public static final java.util.Set<String> LOCAL_KEYS = java.util.Set.of("data_root", "resume_ckpt", "out", "log_step",
            "keep_last_n_checkpoints", "sample_prompts", "sample_steps", "logdir", "save_single_file", "project_name");

    /** Reads {@code trainJson}; {@code overrides} hold flag values by train.json key (null: not given). */
    public static TrainConfig load(Path trainJson, Map<String, Object> overrides) {
        return of(new ConfigFiles(trainJson, Json.readObject(trainJson, trainJson.toString()), null, null), overrides);
    }

    /** From already-read config files (train.json's tree; paths relative to its folder). */
    public static TrainConfig of(ConfigFiles files, Map<String, Object> overrides) {
        return fromJson(files.train(), files.trainPath().toAbsolutePath().getParent(), overrides, files.trainPath().toString());
    }

    /** The inverse of {@link #toJson()}: a config received in a run plan (absolute paths). */
    public static TrainConfig fromJson(JsonNode j) {
        return fromJson(j, Path.of("/"), Map.of(), "run plan train_config");
    }

    /**
     * @param base the folder relative paths are resolved against (train.json's)
     * @param label names the source in errors
     */
    static TrainConfig fromJson(JsonNode j, Path base, Map<String, Object> overrides, String label) {
        Reader r = new Reader(j, overrides, label);
        String dataRoot = r.str("data_root", null);
        String model = r.str("resume_ckpt", null);
        if (dataRoot == null) {
            throw new ConfigError(label + " at data_root: missing (allowed: a folder of captioned images)");
        }
        if (model == null) {
            throw new ConfigError(label + " at resume_ckpt: missing (allowed: a diffusers model folder)");
        }
        String out = r.str("out", "runs/" + r.str("project_name", "dreamcluster"));
        // every range is checked here, naming the file and key (or the flag): the record's own checks
        // are a safety net for configs built in code
        int max = Integer.MAX_VALUE;
        return new TrainConfig(r.path(base, "data_root", dataRoot), r.path(base, "resume_ckpt", model),
                r.path(base, j.hasNonNull("out") || overrides.get("out") != null ? "out" : "project_name", out),
                r.integer("max_epochs", 30, 1, max), r.optInt("max_steps", 1, max), r.integer("batch_size", 2, 1, MAX_BATCH),
                r.integer("grad_accum", 1, 1, MAX_BATCH), seed(r), r.resolution(),
                r.optNumber("clip_grad_norm", Double.MIN_VALUE, "a number > 0, or null for no clipping"),
                r.number("cond_dropout", 0.04, 0, 1, "a probability in [0, 1]"), r.integer("save_every_n_epochs", 0, 0, max),
                r.integer("save_every_n_steps", 0, 0, max), r.number("ckpt_every_n_minutes", 0, 0, Double.MAX_VALUE, "minutes >= 0 (0: off)"),
                r.integer("val_every_n_steps", 50, 0, max), r.integer("val_count", 8, 0, max),
                r.number("zero_frequency_noise_ratio", 0.02, 0, Double.MAX_VALUE, "a number >= 0"), r.integer("clip_skip", 0, 0, 4),
                r.bool("save_full_precision", false), r.integer("log_step", 25, 1, max), r.bool("latent_cache", false),
                r.optInt("keep_last_n_checkpoints", 1, max), TrainFeatures.read(r, base, n -> LOG.warn("{}", n)),
                OutputsConfig.read(j, overrides, label, base), r.optInt("max_skipped_steps", 0, max));
    }

    /** EveryDream2's seed: -1 draws one (once, here; toJson records the drawn value). */
    private static long seed(Reader r) {
        long seed = r.longInt("seed", 555);
        if (seed == -1) {
            seed = new java.security.SecureRandom().nextInt(1 << 30);
            LOG.info("seed -1: drew seed {} (recorded in train_config.json and every checkpoint)", seed);
        }
        return seed;
    }

    /**
     * The same run with this node's own copies of the data, the model and the output folder (null:
     * keep). Goes through the JSON form, so every key survives whatever the record holds.
     */
    public TrainConfig withPaths(Path dataRoot, Path model, Path out) {
        ObjectNode n = toJson();
        if (dataRoot != null) {
            n.put("data_root", dataRoot.toAbsolutePath().normalize().toString());
        }
        if (model != null) {
            n.put("resume_ckpt", model.toAbsolutePath().normalize().toString());
        }
        if (out != null) {
            n.put("out", out.toAbsolutePath().normalize().toString());
        }
        return fromJson(n);
    }

    /** Images per micro-batch (and micro-batches per update) beyond this are a typo, not a run. */
    static final int MAX_BATCH = 65_536;
    /** Bucket resolutions: multiples of 64 up to this (SD's latents are 1/8 and the UNet halves 3 times). */
    static final int MAX_RESOLUTION = 8192;

    /** The config as train.json keys, for checkpoints and logs. */
    public ObjectNode toJson() {
        ObjectNode n = Json.MAPPER.createObjectNode();
        n.put("data_root", dataRoot.toString());
        n.put("resume_ckpt", model.toString());
        n.put("out", out.toString());
        n.put("max_epochs", maxEpochs);
        if (maxSteps == null) {
            n.putNull("max_steps");
        } else {
            n.put("max_steps", maxSteps);
        }
        n.put("batch_size", batchSize);
        n.put("grad_accum", gradAccum);
        n.put("seed", seed);
        n.put("resolution", resolution);
        if (clipGradNorm == null) {
            n.putNull("clip_grad_norm");
        } else {
            n.put("clip_grad_norm", clipGradNorm);
        }
        n.put("cond_dropout", condDropout);
        n.put("save_every_n_epochs", saveEveryNEpochs);
        n.put("save_every_n_steps", saveEveryNSteps);
        n.put("ckpt_every_n_minutes", ckptEveryNMinutes);
        n.put("val_every_n_steps", valEveryNSteps);
        n.put("val_count", valCount);
        n.put("zero_frequency_noise_ratio", zeroFrequencyNoiseRatio);
        n.put("clip_skip", clipSkip);
        n.put("save_full_precision", saveFullPrecision);
        n.put("log_step", logStep);
        n.put("latent_cache", latentCache);
        if (keepLastNCheckpoints == null) {
            n.putNull("keep_last_n_checkpoints");
        } else {
            n.put("keep_last_n_checkpoints", keepLastNCheckpoints);
        }
        if (maxSkippedSteps == null) {
            n.putNull("max_skipped_steps");
        } else {
            n.put("max_skipped_steps", maxSkippedSteps);
        }
        features.write(n);
        outputs.write(n);
        return n;
    }

    /** Typed reads with flag overrides and one-line errors naming the file and key. */
    record Reader(JsonNode j, Map<String, Object> overrides, String label) {
        JsonNode node(String key) {
            Object o = overrides.get(key);
            if (o != null) {
                return Json.MAPPER.valueToTree(o);
            }
            JsonNode n = j.get(key);
            return n == null || n.isNull() ? null : n;
        }

        String where(String key) {
            return overrides.get(key) != null ? "--" + key : label + " at " + key;
        }

        String str(String key, String def) {
            JsonNode n = node(key);
            if (n == null) {
                return def;
            }
            if (!n.isTextual()) {
                throw ConfigError.invalid(where(key), n.toString(), "a string");
            }
            return n.asText();
        }

        /** {@code value} resolved against train.json's folder; a name no file system allows is an error. */
        Path path(Path base, String key, String value) {
            try {
                return base.resolve(value).normalize();
            } catch (java.nio.file.InvalidPathException e) {
                throw ConfigError.invalid(where(key), Json.quote(value), "a path (" + e.getReason() + ")");
            }
        }

        String range(long min, long max) {
            return "a whole number >= " + min + (max == Integer.MAX_VALUE ? "" : " and <= " + max);
        }

        int integer(String key, int def, long min, long max) {
            Integer v = optInt(key, min, max);
            return v == null ? def : v;
        }

        Integer optInt(String key, long min, long max) {
            JsonNode n = node(key);
            return n == null ? null : (int) Json.wholeNumber(n, where(key), min, max, range(min, max));
        }

        long longInt(String key, long def) {
            JsonNode n = node(key);
            return n == null ? def : Json.wholeNumber(n, where(key), Long.MIN_VALUE, Long.MAX_VALUE, "a whole number (64-bit)");
        }

        int resolution() {
            JsonNode n = node("resolution");
            if (n == null) {
                return 512;
            }
            String allowed = "a multiple of 64 in 64.." + MAX_RESOLUTION;
            long v = Json.wholeNumber(n, where("resolution"), 64, MAX_RESOLUTION, allowed);
            if (v % 64 != 0) {
                throw ConfigError.invalid(where("resolution"), n.toString(), allowed);
            }
            return (int) v;
        }

        double number(String key, double def, double min, double max, String allowed) {
            JsonNode n = node(key);
            if (n == null) {
                return def;
            }
            double v = Json.finiteNumber(n, where(key), allowed);
            if (!(v >= min && v <= max)) {
                throw ConfigError.invalid(where(key), n.toString(), allowed);
            }
            return v;
        }

        Double optNumber(String key, double min, String allowed) {
            return node(key) == null ? null : number(key, 0, min, Double.MAX_VALUE, allowed);
        }

        /** For feature keys whose record checks their ranges: any whole number that fits an int. */
        int integer(String key, int def) {
            return integer(key, def, Integer.MIN_VALUE, Integer.MAX_VALUE);
        }

        double number(String key, double def) {
            return number(key, def, -Double.MAX_VALUE, Double.MAX_VALUE, "a number");
        }

        Double optNumber(String key) {
            return optNumber(key, -Double.MAX_VALUE, "a number");
        }

        boolean bool(String key, boolean def) {
            JsonNode n = node(key);
            if (n == null) {
                return def;
            }
            if (!n.isBoolean()) {
                throw ConfigError.invalid(where(key), n.toString(), "true or false");
            }
            return n.booleanValue();
        }
    }
}
