package dev.dreamcluster.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import org.junit.jupiter.api.Test;

/** No train.json key is ignored silently: each has a status, and the ones without effect say so. */
class TrainJsonKeysTest {
    /** EveryDream2 HEAD's argparse options (train.py:1359-1421), --config aside. */
    static final List<String> ED2_ARGS = List.of("amp", "attn_type", "batch_size", "ckpt_every_n_minutes",
            "clip_grad_norm", "clip_skip", "cond_dropout", "data_root", "disable_amp", "disable_textenc_training",
            "disable_unet_training", "ema_decay_rate", "ema_device", "ema_resume_model", "ema_sample_ema_model",
            "ema_sample_nonema_model", "ema_strength_target", "ema_update_interval", "embedding_perturbation",
            "enable_zero_terminal_snr", "flip_p", "gpuid", "grad_accum", "gradient_checkpointing", "keep_tags",
            "load_settings_every_epoch", "log_step", "logdir", "loss_type", "lr", "lr_decay_steps", "lr_scheduler",
            "lr_warmup_steps", "max_epochs", "min_snr_gamma", "no_prepend_last", "no_save_ckpt", "optimizer_config",
            "plugins", "project_name", "pyramid_noise_discount", "rated_dataset", "rated_dataset_target_dropout_percent",
            "resolution", "resume_ckpt", "run_name", "sample_prompts", "sample_steps", "save_ckpt_dir",
            "save_ckpts_from_n_epochs", "save_every_n_epochs", "save_full_precision", "save_optimizer", "seed",
            "shuffle_tags", "timestep_end", "timestep_start", "train_sampler", "validation_config", "wandb",
            "write_schedule", "zero_frequency_noise_ratio");

    static JsonNode resource(String name) throws IOException {
        try (InputStream in = TrainJsonKeysTest.class.getResourceAsStream("/everydream2/" + name)) {
            return Json.MAPPER.readTree(in);
        }
    }

    @Test
    void everyKnownKeyHasAStatus() throws IOException {
        List<String> missing = new ArrayList<>();
        for (String k : ED2_ARGS) {
            if (!TrainJsonKeys.known().contains(k)) {
                missing.add(k);
            }
        }
        for (String k : Keys.TRAIN) {
            if (!TrainJsonKeys.known().contains(k)) {
                missing.add(k);
            }
        }
        for (String f : List.of("train.json", "trainSD21.json")) {
            for (Iterator<String> it = resource(f).fieldNames(); it.hasNext(); ) {
                String k = it.next();
                if (!TrainJsonKeys.known().contains(k)) {
                    missing.add(f + ":" + k);
                }
            }
        }
        assertEquals(List.of(), missing);
    }

    /** The repository root: the nearest folder at or above user.dir that holds bin/dreamcluster. */
    static java.nio.file.Path repositoryRoot() {
        java.nio.file.Path p = java.nio.file.Path.of(System.getProperty("user.dir")).toAbsolutePath();
        for (java.nio.file.Path q = p; q != null; q = q.getParent()) {
            if (java.nio.file.Files.isRegularFile(q.resolve("bin").resolve("dreamcluster"))) {
                return q;
            }
        }
        throw new IllegalStateException("no folder holding bin/dreamcluster at or above " + p);
    }

    /**
     * The keys docs/configuration.md lists: every `key` in the first cell of a table row
     * ({@code | `a`, `b` | status | ... |}); a key named only in running text does not count.
     */
    static java.util.Set<String> documentedKeys(String markdown) {
        java.util.Set<String> keys = new java.util.TreeSet<>();
        java.util.regex.Pattern code = java.util.regex.Pattern.compile("`([a-z0-9_]+)`");
        for (String line : markdown.split("\\R")) {
            String t = line.trim();
            if (!t.startsWith("|") || t.startsWith("|---")) {
                continue;
            }
            int end = t.indexOf('|', 1);
            if (end < 0) {
                continue;
            }
            java.util.regex.Matcher m = code.matcher(t.substring(1, end));
            while (m.find()) {
                keys.add(m.group(1));
            }
        }
        return keys;
    }

    @Test
    void theKeyTableOfConfigurationMdListsEveryKey() throws IOException {
        java.nio.file.Path doc = repositoryRoot().resolve("docs").resolve("configuration.md");
        java.util.Set<String> listed = documentedKeys(java.nio.file.Files.readString(doc));
        List<String> missing = new ArrayList<>();
        for (String k : TrainJsonKeys.known()) {
            if (!listed.contains(k)) {
                missing.add(k);
            }
        }
        assertEquals(List.of(), missing, "keys missing from the first column of a table in " + doc);
    }

    @Test
    void stockTrainJsonHasNoKeyWithoutEffect() throws IOException {
        // every key of EveryDream2's shipped files is honoured or at its "off" value (attn_type "sdp",
        // gpuid 0, wandb false ...); gradient_checkpointing: true, once the only note, is implemented
        assertEquals(List.of(), TrainJsonKeys.notes(resource("train.json"), "train.json"));
        assertEquals(List.of(), TrainJsonKeys.notes(resource("trainSD21.json"), "trainSD21.json"));
        assertTrue(resource("train.json").path("gradient_checkpointing").asBoolean(), "the stock file turns it on");
    }

    @Test
    void refusedKeysNameTheKeyAndTheReason() {
        ConfigError e = assertThrows(ConfigError.class,
                () -> TrainJsonKeys.notes(ConfigResolverTest.json("{'enable_zero_terminal_snr': true}"), "t.json"));
        assertTrue(e.getMessage().startsWith("t.json at enable_zero_terminal_snr: true is not supported (the zero-terminal-SNR"),
                e.getMessage());
        assertThrows(ConfigError.class, () -> TrainJsonKeys.notes(ConfigResolverTest.json("{'plugins': ['x']}"), "t.json"));
        assertEquals(List.of(), TrainJsonKeys.notes(ConfigResolverTest.json("{'plugins': [], 'rated_dataset': false}"), "t"));
        // through the resolver: notes are warnings, refusals are errors
        ResolvedTrainingConfig c = ConfigResolverTest.resolve("{'attn_type': 'xformers'}", null);
        assertTrue(c.warnings().get(0).contains("attn_type (\"xformers\") has no effect here"), c.warnings().toString());
        assertThrows(ConfigError.class, () -> ConfigResolverTest.resolve("{'load_settings_every_epoch': true}", null));
    }
}
