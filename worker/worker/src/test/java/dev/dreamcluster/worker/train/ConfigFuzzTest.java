package dev.dreamcluster.worker.train;

import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.dreamcluster.config.CliFlags;
import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.config.ConfigResolver;
import dev.dreamcluster.config.TrainConfig;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Seeded fuzzing of the config readers: random train.json/optimizer.json trees built from the real
 * keys with hostile values (numbers that do not fit, wrong types, NUL bytes in paths, deep nesting)
 * and byte mutations of the shipped configs, into {@link ConfigResolver#load} and
 * {@link TrainConfig#load}. Nothing but {@link ConfigError} may come out, no input may hang, and no
 * input may allocate much more than its size.
 */
class ConfigFuzzTest {
    /** The first cases load classes and warm the JIT: their allocations are not the parser's. */
    static final int WARMUP = 200;
    static final int CASES = 1500;
    static final long SEED = 0xC0FF1CL;
    static final List<String> TRAIN_KEYS = List.of("data_root", "resume_ckpt", "out", "project_name", "optimizer_config", "max_steps",
            "max_epochs", "batch_size", "grad_accum", "seed", "resolution", "clip_grad_norm", "cond_dropout", "save_every_n_epochs",
            "save_every_n_steps", "ckpt_every_n_minutes", "val_every_n_steps", "val_count", "zero_frequency_noise_ratio", "clip_skip",
            "save_full_precision", "log_step", "latent_cache", "keep_last_n_checkpoints", "lr", "lr_scheduler", "lr_warmup_steps",
            "lr_decay_steps", "disable_textenc_training", "disable_unet_training", "text_encder_lr_scale");
    static final List<String> OPT_KEYS = List.of("base", "text_encoder_overrides", "text_encoder_freezing", "text_encoder_lr_scale",
            "text_encder_lr_scale", "doc", "apply_grad_scaler_step_tweaks", "use_grad_scaler");
    static final List<String> SECTION_KEYS = List.of("optimizer", "lr", "lr_scheduler", "lr_warmup_steps", "lr_decay_steps", "betas",
            "epsilon", "weight_decay", "freeze_embeddings", "freeze_front_n_layers", "unfreeze_last_n_layers", "freeze_final_layer_norm");
    static final String[] VALUES = {"0", "1", "-1", "-5", "2", "64", "100", "512", "4294967298", "2147483648", "-2147483649",
        "9223372036854775808", "1e400", "-1e400", "1e-400", "0.5", "1.5", "2.0", "1e18", "true", "false", "null", "\"\"", "\"two\"",
        "\"adamw\"", "\"lion8bit\"", "\"cosine\"", "\"bogus\"", "\"a\\u0000b\"", "\"/\"", "\"..\"", "[]", "[0.9]", "[0.9, 0.999]",
        "[1e400, 0]", "[\"x\", 1]", "{}", "{\"lr\": 1}", "[[[[[[[[[[]]]]]]]]]]"};

    @Test
    void shouldOnlyEverThrowConfigError(@TempDir Path dir) throws Exception {
        List<byte[]> shipped = List.of(Files.readAllBytes(Path.of("..", "..", "examples", "configs", "optimizer.json")),
                Files.readAllBytes(Path.of("..", "..", "examples", "configs", "optimizerSD21.json")),
                Files.readAllBytes(Path.of("..", "..", "examples", "configs", "train.json")));
        Path train = dir.resolve("train.json");
        Path opt = dir.resolve("optimizer.json");
        com.sun.management.ThreadMXBean mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        assertTimeoutPreemptively(Duration.ofSeconds(120), () -> {
            SplittableRandom rnd = new SplittableRandom(SEED);
            int accepted = 0;
            for (int i = 0; i < CASES; i++) {
                byte[] t;
                byte[] o;
                if (i % 3 == 2) {
                    t = mutate(rnd, shipped.get(2));
                    o = mutate(rnd, shipped.get(rnd.nextInt(2)));
                } else {
                    t = object(rnd, TRAIN_KEYS, true).getBytes(StandardCharsets.UTF_8);
                    o = object(rnd, OPT_KEYS, false).getBytes(StandardCharsets.UTF_8);
                }
                Files.write(train, t);
                Files.write(opt, o);
                long before = mx.getThreadAllocatedBytes(Thread.currentThread().getId());
                try {
                    ConfigResolver.load(train, CliFlags.NONE, 1 + rnd.nextInt(24));
                    TrainConfig.load(train, Map.of());
                    accepted++;
                } catch (ConfigError expected) {
                    assertTrue(!expected.getMessage().isBlank() && expected.getMessage().indexOf('\n') < 0, expected.getMessage());
                } catch (Throwable e) {
                    fail("case " + i + " threw " + e + "\ntrain.json: " + new String(t, StandardCharsets.UTF_8) + "\noptimizer.json: "
                            + new String(o, StandardCharsets.UTF_8), e);
                }
                long allocated = mx.getThreadAllocatedBytes(Thread.currentThread().getId()) - before;
                long bound = 256L * (t.length + o.length) + (8L << 20);
                assertTrue(i < WARMUP || allocated < bound, "case " + i + ": " + allocated + " bytes for " + (t.length + o.length) + " bytes of input");
            }
            assertTrue(accepted > 0, "some generated configs are valid");
        });
    }

    /** A JSON object of known keys (train.json's or optimizer.json's) with random, often hostile values. */
    static String object(SplittableRandom rnd, List<String> keys, boolean train) {
        StringBuilder s = new StringBuilder("{");
        if (train) {
            // mostly keep the required keys and the optimizer file, so resolution gets past them
            if (rnd.nextInt(4) > 0) {
                s.append("\"data_root\": \"d\", \"resume_ckpt\": \"m\", ");
            }
            if (rnd.nextInt(3) > 0) {
                s.append("\"optimizer_config\": \"optimizer.json\", ");
            }
        }
        int n = rnd.nextInt(0, 6);
        for (int k = 0; k < n; k++) {
            String key = rnd.nextInt(20) == 0 ? "unknown_" + rnd.nextInt(3) : keys.get(rnd.nextInt(keys.size()));
            s.append('"').append(key).append("\": ");
            if (!train && key.startsWith("text_encoder") && !key.contains("scale") || key.equals("base")) {
                s.append(section(rnd));
            } else {
                s.append(VALUES[rnd.nextInt(VALUES.length)]);
            }
            s.append(", ");
        }
        s.append("\"_end\": 0}");
        if (!train) {
            // optimizer.json rejects unknown keys: drop the marker most of the time
            return rnd.nextInt(4) > 0 ? s.toString().replace(", \"_end\": 0}", "}").replace("{\"_end\": 0}", "{}") : s.toString();
        }
        return s.toString();
    }

    static String section(SplittableRandom rnd) {
        if (rnd.nextInt(10) == 0) {
            return VALUES[rnd.nextInt(VALUES.length)];
        }
        StringBuilder s = new StringBuilder("{");
        int n = rnd.nextInt(0, 5);
        for (int k = 0; k < n; k++) {
            s.append(k > 0 ? ", " : "").append('"').append(SECTION_KEYS.get(rnd.nextInt(SECTION_KEYS.size()))).append("\": ")
                    .append(VALUES[rnd.nextInt(VALUES.length)]);
        }
        return s.append('}').toString();
    }

    /** Bit flips, a cut, or a duplicated span in a real config file. */
    static byte[] mutate(SplittableRandom rnd, byte[] b) {
        byte[] c = b.clone();
        switch (rnd.nextInt(3)) {
            case 0 -> {
                for (int k = rnd.nextInt(1, 6); k > 0; k--) {
                    c[rnd.nextInt(c.length)] ^= (byte) (1 << rnd.nextInt(8));
                }
            }
            case 1 -> c = java.util.Arrays.copyOf(c, rnd.nextInt(c.length + 1));
            default -> {
                int from = rnd.nextInt(c.length);
                int len = rnd.nextInt(Math.min(64, c.length - from) + 1);
                int at = rnd.nextInt(c.length + 1);
                byte[] d = new byte[c.length + len];
                System.arraycopy(c, 0, d, 0, at);
                System.arraycopy(c, from, d, at, len);
                System.arraycopy(c, at, d, at + len, c.length - at);
                c = d;
            }
        }
        return c;
    }
}
