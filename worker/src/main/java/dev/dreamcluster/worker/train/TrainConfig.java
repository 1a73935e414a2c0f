package dev.dreamcluster.worker.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.config.Json;
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
 * @param outputs sample images, TensorBoard and the single-file final model ({@link OutputsConfig})
 */
public record TrainConfig(Path dataRoot, Path model, Path out, int maxEpochs, Integer maxSteps, int batchSize,
        int gradAccum, long seed, int resolution, Double clipGradNorm, double condDropout, int saveEveryNEpochs,
        int saveEveryNSteps, double ckptEveryNMinutes, int valEveryNSteps, int valCount, double zeroFrequencyNoiseRatio,
        int clipSkip, boolean saveFullPrecision, int logStep, boolean latentCache, OutputsConfig outputs) {

    /** A config without sample images, TensorBoard or single-file output. */
    public TrainConfig(Path dataRoot, Path model, Path out, int maxEpochs, Integer maxSteps, int batchSize, int gradAccum, long seed,
            int resolution, Double clipGradNorm, double condDropout, int saveEveryNEpochs, int saveEveryNSteps,
            double ckptEveryNMinutes, int valEveryNSteps, int valCount, double zeroFrequencyNoiseRatio, int clipSkip,
            boolean saveFullPrecision, int logStep, boolean latentCache) {
        this(dataRoot, model, out, maxEpochs, maxSteps, batchSize, gradAccum, seed, resolution, clipGradNorm, condDropout,
                saveEveryNEpochs, saveEveryNSteps, ckptEveryNMinutes, valEveryNSteps, valCount, zeroFrequencyNoiseRatio, clipSkip,
                saveFullPrecision, logStep, latentCache, OutputsConfig.NONE);
    }

    public TrainConfig {
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
        if (resolution < 64) {
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
    }

    /** Reads {@code trainJson}; {@code overrides} hold flag values by train.json key (null: not given). */
    public static TrainConfig load(Path trainJson, Map<String, Object> overrides) {
        JsonNode j = Json.readObject(trainJson, trainJson.toString());
        Path base = trainJson.toAbsolutePath().getParent();
        Reader r = new Reader(j, overrides, trainJson.toString());
        String dataRoot = r.str("data_root", null);
        String model = r.str("resume_ckpt", null);
        if (dataRoot == null) {
            throw new ConfigError(trainJson + " at data_root: missing (allowed: a folder of captioned images)");
        }
        if (model == null) {
            throw new ConfigError(trainJson + " at resume_ckpt: missing (allowed: a diffusers model folder)");
        }
        String out = r.str("out", "runs/" + r.str("project_name", "dreamcluster"));
        return new TrainConfig(base.resolve(dataRoot).normalize(), base.resolve(model).normalize(), base.resolve(out).normalize(),
                r.integer("max_epochs", 30), r.optInt("max_steps"), r.integer("batch_size", 2), r.integer("grad_accum", 1),
                r.integer("seed", 555), r.integer("resolution", 512), r.optNumber("clip_grad_norm"),
                r.number("cond_dropout", 0.04), r.integer("save_every_n_epochs", 0), r.integer("save_every_n_steps", 0),
                r.number("ckpt_every_n_minutes", 0), r.integer("val_every_n_steps", 50), r.integer("val_count", 8),
                r.number("zero_frequency_noise_ratio", 0.02), r.integer("clip_skip", 0), r.bool("save_full_precision", false),
                r.integer("log_step", 25), r.bool("latent_cache", false), OutputsConfig.read(j, overrides, trainJson.toString(), base));
    }

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
        outputs.write(n);
        return n;
    }

    /** Typed reads with flag overrides and one-line errors naming the file and key. */
    private record Reader(JsonNode j, Map<String, Object> overrides, String label) {
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

        int integer(String key, int def) {
            Integer v = optInt(key);
            return v == null ? def : v;
        }

        Integer optInt(String key) {
            JsonNode n = node(key);
            if (n == null) {
                return null;
            }
            if (!n.isNumber() || n.doubleValue() != Math.rint(n.doubleValue())) {
                throw ConfigError.invalid(where(key), n.toString(), "a whole number");
            }
            return n.intValue();
        }

        double number(String key, double def) {
            Double v = optNumber(key);
            return v == null ? def : v;
        }

        Double optNumber(String key) {
            JsonNode n = node(key);
            if (n == null) {
                return null;
            }
            if (!n.isNumber()) {
                throw ConfigError.invalid(where(key), n.toString(), "a number");
            }
            return n.doubleValue();
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
