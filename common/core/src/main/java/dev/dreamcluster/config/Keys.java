package dev.dreamcluster.config;

import java.util.Collection;
import java.util.Set;

/** The keys each JSON file may hold, and "did you mean" for the ones it may not. */
final class Keys {
    static final Set<String> OPTIMIZER_TOP = Set.of(
            "doc", "base", "text_encoder_overrides", "text_encoder_lr_scale", "text_encder_lr_scale",
            "text_encoder_freezing", "apply_grad_scaler_step_tweaks", "log_grad_norm");
    static final Set<String> SECTION = Set.of(
            "optimizer", "lr", "lr_scheduler", "lr_warmup_steps", "lr_decay_steps", "betas", "epsilon",
            "weight_decay");
    static final Set<String> FREEZING = Set.of(
            "freeze_embeddings", "freeze_front_n_layers", "unfreeze_last_n_layers", "freeze_final_layer_norm");

    /**
     * EveryDream2's train.json keys (including ones its own shipped examples still carry but it no
     * longer reads) and DreamCluster's additions. Anything else draws a warning, since EveryDream2
     * ignored unknown keys and users' files carry many.
     */
    static final Set<String> TRAIN = Set.of(
            "amp", "aspects", "attn_type", "batch_size", "ckpt_every_n_minutes", "clip_grad_norm", "clip_skip",
            "cond_dropout", "data_root", "disable_amp", "disable_textenc_training", "disable_unet_training",
            "disable_xformers", "ema_decay_rate", "ema_device", "ema_resume_model", "ema_sample_ema_model",
            "ema_sample_nonema_model", "ema_strength_target", "ema_update_interval", "embedding_perturbation",
            "enable_zero_terminal_snr", "flip_p", "gpuid", "grad_accum", "gradient_checkpointing", "keep_tags",
            "load_settings_every_epoch", "log_step", "logdir", "loss_type", "lowvram", "lr", "lr_decay_steps",
            "lr_scheduler", "lr_warmup_steps", "max_epochs", "min_snr_gamma", "no_prepend_last", "no_save_ckpt",
            "notebook", "optimizer_config", "plugins", "project_name", "pyramid_noise_discount",
            "rated_dataset", "rated_dataset_target_dropout_percent", "resolution", "resume_ckpt", "run_name",
            "sample_prompts", "sample_steps", "save_ckpt_dir", "save_ckpts_from_n_epochs", "save_every_n_epochs",
            "save_full_precision", "save_optimizer", "scale_lr", "seed", "shuffle_tags", "skip_undersized_images",
            "timestep_end", "timestep_start", "train_sampler", "validation_config", "wandb", "write_schedule",
            "zero_frequency_noise_ratio",
            // DreamCluster additions
            "max_steps", "out", "workers", "min_workers", "max_workers", "join_timeout", "rejoin_timeout",
            "val_every_n_steps", "save_every_n_steps",
            "latent_cache", "prediction_type", "device", "val_count", "save_single_file", "amp_dtype", "collective");

    private Keys() {}

    /** " (did you mean \"x\"?)" for the closest known key within a small edit distance, else "". */
    static String didYouMean(String key, Collection<String> known) {
        String best = null;
        int bestD = Integer.MAX_VALUE;
        for (String k : known.stream().sorted().toList()) {
            int d = distance(key.toLowerCase(java.util.Locale.ROOT), k);
            if (d < bestD) {
                bestD = d;
                best = k;
            }
        }
        int limit = Math.max(2, key.length() / 3);
        return best != null && bestD <= limit ? " (did you mean " + Json.quote(best) + "?)" : "";
    }

    static String known(Collection<String> known) {
        return String.join(", ", known.stream().sorted().toList());
    }

    /** Levenshtein distance; keys are short, so the O(n*m) table costs nothing. */
    static int distance(String a, String b) {
        int[] prev = new int[b.length() + 1];
        int[] cur = new int[b.length() + 1];
        for (int j = 0; j <= b.length(); j++) {
            prev[j] = j;
        }
        for (int i = 1; i <= a.length(); i++) {
            cur[0] = i;
            for (int j = 1; j <= b.length(); j++) {
                int sub = prev[j - 1] + (a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1);
                cur[j] = Math.min(sub, Math.min(prev[j] + 1, cur[j - 1] + 1));
            }
            int[] t = prev;
            prev = cur;
            cur = t;
        }
        return prev[b.length()];
    }

}
