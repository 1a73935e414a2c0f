package dev.dreamcluster.config;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Predicate;

/**
 * What DreamCluster does with every train.json key EveryDream2 reads (its argparse options and the
 * obsolete keys its shipped examples still carry) and with DreamCluster's own additions. Nothing is
 * ignored silently: a key without effect here draws one note at start, a key whose effect cannot be
 * reproduced is refused (when set to anything but its "off" value) with the reason.
 */
public final class TrainJsonKeys {
    /** How a key is treated. */
    public enum Status {
        /** honoured (see the key table of docs/configuration.md for any difference from EveryDream2) */
        IMPLEMENTED,
        /** accepted; one note at start says why it has no effect here */
        NO_EFFECT,
        /** a ConfigError unless the value is its "off" value */
        REFUSED,
        /** parsed by the samples/TensorBoard/single-file part of DreamCluster */
        OUTPUTS
    }

    /** A key's status, why, and which values count as "off" (no note, no refusal). */
    public record Entry(Status status, String why, Predicate<JsonNode> off) {}

    private static final Map<String, Entry> TABLE = new LinkedHashMap<>();

    private static Predicate<JsonNode> offWhen(Object... values) {
        return n -> {
            if (n == null || n.isNull() || (n.isBoolean() && !n.booleanValue()) || (n.isArray() && n.isEmpty())) {
                return true;
            }
            for (Object v : values) {
                if (Json.MAPPER.valueToTree(v).equals(n) || (v instanceof Number x && n.isNumber()
                        && n.doubleValue() == x.doubleValue())) {
                    return true;
                }
            }
            return false;
        };
    }

    private static void ok(String key) {
        TABLE.put(key, new Entry(Status.IMPLEMENTED, "", n -> true));
    }

    private static void none(String key, String why, Object... off) {
        TABLE.put(key, new Entry(Status.NO_EFFECT, why, offWhen(off)));
    }

    private static void refuse(String key, String why, Object... off) {
        TABLE.put(key, new Entry(Status.REFUSED, why, offWhen(off)));
    }

    private static void outputs(String key) {
        TABLE.put(key, new Entry(Status.OUTPUTS, "samples/TensorBoard/single-file", n -> true));
    }

    static {
        for (String k : List.of("batch_size", "ckpt_every_n_minutes", "clip_grad_norm", "clip_skip", "cond_dropout",
                "data_root", "disable_textenc_training", "disable_unet_training", "embedding_perturbation", "flip_p",
                "grad_accum", "keep_tags", "log_step", "loss_type", "lr", "lr_decay_steps", "lr_scheduler",
                "lr_warmup_steps", "max_epochs", "min_snr_gamma", "optimizer_config", "project_name",
                "pyramid_noise_discount", "resolution", "resume_ckpt", "save_ckpts_from_n_epochs", "save_every_n_epochs",
                "save_full_precision", "seed", "shuffle_tags", "timestep_end", "timestep_start", "validation_config",
                "zero_frequency_noise_ratio", "ema_decay_rate", "ema_strength_target", "ema_update_interval",
                // DreamCluster additions
                "max_steps", "out", "val_every_n_steps", "save_every_n_steps", "latent_cache", "val_count",
                "min_workers", "max_workers", "join_timeout", "rejoin_timeout", "max_skipped_steps", "amp", "disable_amp", "amp_dtype", "collective",
                "device", "gradient_checkpointing")) { // the last six: how the workers compute (worker --device beats device)
            ok(k);
        }
        for (String k : List.of("logdir", "run_name", "sample_prompts", "sample_steps", "save_single_file", "no_save_ckpt",
                "ema_sample_ema_model", "ema_sample_nonema_model")) {
            outputs(k);
        }

        none("attn_type", "attention is DreamCluster's own scaled-dot-product kernel (no xformers or sliced attention)", "sdp");
        none("disable_xformers", "there is no xformers here (EveryDream2 no longer reads it either)");
        none("gpuid", "each worker picks its device (worker --device)", 0);
        none("lowvram", "EveryDream2 no longer reads it either");
        none("notebook", "EveryDream2 does not read it either");
        none("scale_lr", "removed from EveryDream2 in 2023 (it was never applied from train.json)");
        none("aspects", "aspect buckets are derived from resolution, as EveryDream2 does");
        none("skip_undersized_images", "images of any size are resized into their bucket");
        none("no_prepend_last", "the final model is always <out>/final");
        none("save_ckpt_dir", "checkpoints go to <out>/checkpoints: set out instead");
        none("save_optimizer", "optimizer state is always saved in every checkpoint (exact resume needs it)", true);
        none("write_schedule", "not implemented: no schedule file is written");
        none("wandb", "not available (no Weights & Biases client); metrics go to <out>/metrics.jsonl");
        none("ema_device", "EMA weights are kept in host memory on rank 0", "cpu");
        none("train_sampler", "training noise is the same for ddpm, ddim and pndm (they share add_noise)", "ddpm", "ddim",
                "pndm");
        none("rated_dataset_target_dropout_percent", "only used by rated_dataset, which is refused", 50);
        refuse("plugins", "EveryDream2's Python plugins cannot run on the JVM");
        refuse("rated_dataset", "rated-image dropout is not implemented");
        refuse("enable_zero_terminal_snr", "the zero-terminal-SNR beta schedule is not implemented");
        refuse("load_settings_every_epoch", "the config is resolved once and sent to every worker");
        refuse("ema_resume_model", "resume the EMA with --resume CHECKPOINT (every checkpoint holds the EMA weights)");
        // DreamCluster keys that belong on the command line
        none("prediction_type", "the prediction type is read from the model's scheduler_config.json");
        none("workers", "use the flag --workers N");
    }

    private TrainJsonKeys() {}

    /** Every key and its entry, in table order. */
    public static Map<String, Entry> table() {
        return Collections.unmodifiableMap(TABLE);
    }

    public static Set<String> known() {
        return TABLE.keySet();
    }

    /**
     * One note per key of {@code train} that is set but has no effect here; a ConfigError for a
     * refused key that is set. Unknown keys are reported by the caller.
     */
    public static List<String> notes(JsonNode train, String label) {
        List<String> notes = new ArrayList<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = train.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> f = it.next();
            Entry e = TABLE.get(f.getKey());
            if (e == null || e.off().test(f.getValue())) {
                continue;
            }
            if (e.status() == Status.REFUSED) {
                throw new ConfigError(label + " at " + f.getKey() + ": " + f.getValue() + " is not supported ("
                        + e.why() + "; allowed: null, false or empty)");
            }
            if (e.status() == Status.NO_EFFECT) {
                notes.add(label + ": " + f.getKey() + " (" + f.getValue() + ") has no effect here: " + e.why());
            }
        }
        return notes;
    }
}
