package dev.dreamcluster.config;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Path;
import java.util.function.Consumer;

/**
 * The EveryDream2 training features of a train.json beyond the basic step (same key names, same
 * defaults as its argparse): loss, noise, timesteps, text-embedding perturbation, data augmentation,
 * held-out validation, EMA and the epoch from which checkpoints are saved. Part of {@link TrainConfig}
 * and written by its toJson under the same keys, so the config round-trips.
 *
 * @param minSnrGamma min-SNR-gamma loss weighting (null: off)
 * @param pyramidNoiseDiscount pyramid noise discount (0: off)
 * @param embeddingPerturbation gamma of N(0, gamma/sqrt(d)) added to the text-encoder output
 * @param timestepStart first training timestep (inclusive)
 * @param timestepEnd last training timestep (exclusive)
 * @param flipP default horizontal-flip probability (folders and yaml files override it)
 * @param shuffleTags shuffle the comma-separated tags after the first caption part
 * @param keepTags the first keepTags tags stay in place when shuffling
 * @param validation the held-out validation set, or null (then the first val_count training images)
 * @param emaDecayRate EMA decay per update (null: off unless emaStrengthTarget is set)
 * @param emaStrengthTarget EMA strength at the end: decay = target^(updateInterval / total steps)
 * @param emaUpdateInterval optimizer steps between EMA updates
 * @param saveCkptsFromNEpochs epoch checkpoints only from this epoch on
 */
public record TrainFeatures(LossType lossType, Double minSnrGamma, double pyramidNoiseDiscount,
        double embeddingPerturbation, int timestepStart, int timestepEnd, double flipP, boolean shuffleTags,
        int keepTags, ValidationConfig validation, Double emaDecayRate, Double emaStrengthTarget, int emaUpdateInterval,
        int saveCkptsFromNEpochs) {

    /** EveryDream2's defaults: every feature off, loss mse_huber (its argparse default). */
    public static final TrainFeatures DEFAULTS = new TrainFeatures(LossType.MSE_HUBER, null, 0, 0, 0, 1000, 0, false, 0,
            null, null, null, 500, 0);

    public TrainFeatures {
        if (minSnrGamma != null && !(minSnrGamma > 0)) {
            throw ConfigError.invalid("min_snr_gamma", minSnrGamma.toString(), "a number > 0, or null for off");
        }
        if (!(pyramidNoiseDiscount >= 0 && pyramidNoiseDiscount < 1)) {
            throw ConfigError.invalid("pyramid_noise_discount", Double.toString(pyramidNoiseDiscount),
                    "a number in [0, 1), or null for off");
        }
        if (!(embeddingPerturbation >= 0) || !Double.isFinite(embeddingPerturbation)) {
            throw ConfigError.invalid("embedding_perturbation", Double.toString(embeddingPerturbation), "a number >= 0");
        }
        if (timestepStart < 0 || timestepEnd > 1000 || timestepStart >= timestepEnd) {
            throw ConfigError.invalid("timestep_start/timestep_end", timestepStart + "/" + timestepEnd,
                    "0 <= timestep_start < timestep_end <= 1000");
        }
        if (!(flipP >= 0 && flipP <= 1)) {
            throw ConfigError.invalid("flip_p", Double.toString(flipP), "a probability in [0, 1]");
        }
        if (keepTags < 0) {
            throw ConfigError.invalid("keep_tags", Integer.toString(keepTags), "a whole number >= 0");
        }
        if (emaDecayRate != null && !(emaDecayRate > 0 && emaDecayRate < 1)) {
            throw ConfigError.invalid("ema_decay_rate", emaDecayRate.toString(), "a number in (0, 1), or null for off");
        }
        if (emaStrengthTarget != null && !(emaStrengthTarget > 0 && emaStrengthTarget < 1)) {
            throw ConfigError.invalid("ema_strength_target", emaStrengthTarget.toString(), "a number in (0, 1), or null");
        }
        if (emaUpdateInterval < 1) {
            throw ConfigError.invalid("ema_update_interval", Integer.toString(emaUpdateInterval), "a whole number >= 1");
        }
        if (saveCkptsFromNEpochs < 0) {
            throw ConfigError.invalid("save_ckpts_from_n_epochs", Integer.toString(saveCkptsFromNEpochs), "a whole number >= 0");
        }
    }

    /** Whether EMA weights are kept (either EMA key set, as in EveryDream2). */
    public boolean emaEnabled() {
        return emaDecayRate != null || emaStrengthTarget != null;
    }

    /** The EMA decay for a run of {@code totalSteps} optimizer steps (ema_strength_target wins, as in EveryDream2). */
    public double emaDecay(int totalSteps) {
        if (emaStrengthTarget != null) {
            double updates = (double) totalSteps / emaUpdateInterval;
            return Math.pow(emaStrengthTarget, 1 / updates);
        }
        return emaDecayRate;
    }

    static TrainFeatures read(TrainConfig.Reader r, Path base, Consumer<String> note) {
        String loss = r.str("loss_type", DEFAULTS.lossType().key());
        Double pyramid = r.optNumber("pyramid_noise_discount");
        JsonNode val = r.node("validation_config");
        return new TrainFeatures(LossType.parse(loss, r.where("loss_type")), r.optNumber("min_snr_gamma"),
                pyramid == null || pyramid <= 0 ? 0 : pyramid, r.number("embedding_perturbation", 0),
                r.integer("timestep_start", 0), r.integer("timestep_end", 1000), r.number("flip_p", 0),
                r.bool("shuffle_tags", false), r.integer("keep_tags", 0),
                val == null ? null : ValidationConfig.read(val, base, r.where("validation_config"), note),
                r.optNumber("ema_decay_rate"), r.optNumber("ema_strength_target"), r.integer("ema_update_interval", 500),
                r.integer("save_ckpts_from_n_epochs", 0));
    }

    void write(ObjectNode n) {
        n.put("loss_type", lossType.key());
        putOpt(n, "min_snr_gamma", minSnrGamma);
        n.put("pyramid_noise_discount", pyramidNoiseDiscount);
        n.put("embedding_perturbation", embeddingPerturbation);
        n.put("timestep_start", timestepStart);
        n.put("timestep_end", timestepEnd);
        n.put("flip_p", flipP);
        n.put("shuffle_tags", shuffleTags);
        n.put("keep_tags", keepTags);
        if (validation == null) {
            n.putNull("validation_config");
        } else {
            n.set("validation_config", validation.toJson());
        }
        putOpt(n, "ema_decay_rate", emaDecayRate);
        putOpt(n, "ema_strength_target", emaStrengthTarget);
        n.put("ema_update_interval", emaUpdateInterval);
        n.put("save_ckpts_from_n_epochs", saveCkptsFromNEpochs);
    }

    private static void putOpt(ObjectNode n, String k, Double v) {
        if (v == null) {
            n.putNull(k);
        } else {
            n.put(k, v);
        }
    }
}
