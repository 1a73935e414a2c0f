package dev.dreamcluster.worker.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dreamcluster.config.CliFlags;
import dev.dreamcluster.config.ConfigResolver;
import dev.dreamcluster.config.Json;
import dev.dreamcluster.config.TrainConfig;
import dev.dreamcluster.config.ResolvedTrainingConfig;
import dev.dreamcluster.freeze.Component;
import dev.dreamcluster.model.DiffusersFolder;
import dev.dreamcluster.model.Presets;
import dev.dreamcluster.safetensors.DType;
import dev.dreamcluster.safetensors.SafetensorsFile;
import dev.dreamcluster.worker.data.SyntheticDataset;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * EveryDream2's features in the single-process trainer on the tiny preset: EMA (update rule, saved
 * beside the model, exact resume), every feature on at once resuming bit for bit, checkpoint cadence
 * (save_ckpts_from_n_epochs, ckpt_every_n_minutes), validation cadence, and a saved folder keeping
 * every key of the source configs.
 */
class EveryDream2TrainingTest {
    @TempDir
    static Path tmp;

    /** Every feature on (the same set the 2-vs-1 worker test uses). */
    static final String FEATURES = "'loss_type': 'mse_huber', 'min_snr_gamma': 5.0, 'pyramid_noise_discount': 0.1,"
            + " 'embedding_perturbation': 0.2, 'timestep_start': 100, 'timestep_end': 900, 'flip_p': 0.5, 'shuffle_tags': true,"
            + " 'keep_tags': 1, 'validation_config': 'val.json', 'ema_decay_rate': 0.8, 'ema_update_interval': 2";

    @BeforeAll
    static void inputs() throws Exception {
        DiffusersFolder.writeRandom(tmp.resolve("model"), Presets.TINY, 0, DType.F32);
        edit(tmp.resolve("model"), "unet/config.json", "upcast_attention", "true");
        edit(tmp.resolve("model"), "scheduler/scheduler_config.json", "timestep_spacing", "\"leading\"");
        edit(tmp.resolve("model"), "scheduler/scheduler_config.json", "_class_name", "\"PNDMScheduler\"");
        dataset(tmp.resolve("data"));
        Files.writeString(tmp.resolve("val.json"), "{\"auto_split_proportion\": 0.2, \"seed\": 1, \"every_n_epochs\": 0.5}");
    }

    /** 12 synthetic images with folder options: global.yaml tags (so shuffling has work), flip_p.txt and cond_dropout.txt. */
    static void dataset(Path data) throws Exception {
        SyntheticDataset.write(data, 12, 48, 1);
        Files.writeString(data.resolve("global.yaml"), "tags: [bright, simple, flat, centered]\n");
        Files.writeString(data.resolve("extra").resolve("flip_p.txt"), "1");
        Files.writeString(data.resolve("extra").resolve("cond_dropout.txt"), "0.5");
        Files.writeString(data.resolve("extra").resolve("loss_scale.txt"), "0.5");
    }

    static void edit(Path dir, String rel, String key, String valueJson) throws Exception {
        Path f = dir.resolve(rel);
        ObjectNode n = (ObjectNode) Json.MAPPER.readTree(f.toFile());
        n.set(key, Json.MAPPER.readTree(valueJson));
        Files.writeString(f, n.toString());
    }

    static TrainConfig config(String name, String extra, int steps) throws Exception {
        Path json = tmp.resolve(name + ".json");
        Files.writeString(json, ("{'data_root': 'data', 'resume_ckpt': 'model', 'out': '" + name + "', 'resolution': 64,"
                + " 'batch_size': 2, 'grad_accum': 1, 'seed': 4, 'max_steps': " + steps + (extra.isEmpty() ? "" : ", " + extra)
                + "}").replace('\'', '"'));
        return TrainConfig.load(json, Map.of());
    }

    static ResolvedTrainingConfig optimizer() {
        return ConfigResolver.resolve(null, CliFlags.NONE, new ConfigResolver.Input(TrainerTest.readTree(
                "{'base': {'optimizer': 'adamw', 'lr': 1e-3}, 'text_encoder_freezing': {'freeze_front_n_layers': 2}}"),
                "opt.json"), 4);
    }

    static float[] weight(Path folder, Component c, String name) {
        return SafetensorsFile.open(DiffusersFolder.weightsFile(folder, c)).readFloats(name);
    }

    @Test
    void emaFollowsEveryDream2sUpdateRuleAndIsSavedBesideTheModel() throws Exception {
        TrainConfig cfg = config("ema", "'ema_decay_rate': 0.75, 'ema_update_interval': 2", 3);
        Path out = cfg.out();
        Path init = tmp.resolve("model");
        Path[] after = new Path[4];
        try (Trainer t = new Trainer(cfg, optimizer(), null, w -> { })) {
            for (int s = 1; s <= 3; s++) {
                t.trainStep();
                after[s] = out.resolve("s" + s);
                t.saveModel(after[s], DType.F32);
            }
        }
        assertTrue(Files.isDirectory(out.resolve("s3_ema")), "EMA weights are saved as <model>_ema");
        for (Component c : new Component[] {Component.UNET, Component.TEXT_ENCODER}) {
            for (String name : SafetensorsFile.open(DiffusersFolder.weightsFile(init, c)).tensors().keySet()) {
                float[] p0 = weight(init, c, name);
                float[] p2 = weight(after[2], c, name);
                float[] expected = new float[p0.length];
                for (int i = 0; i < p0.length; i++) {
                    expected[i] = p0[i] * 0.75f + p2[i] * (1f - 0.75f); // one update, after step 2
                }
                assertArrayEquals(p0, weight(out.resolve("s1_ema"), c, name), "no update before step 2: " + name);
                assertArrayEquals(expected, weight(out.resolve("s2_ema"), c, name), name);
                assertArrayEquals(expected, weight(out.resolve("s3_ema"), c, name), "no update at step 3: " + name);
            }
        }
        // frozen tensors (embeddings, layers 0-1) are their own EMA; a trained one moved
        assertArrayEquals(weight(init, Component.TEXT_ENCODER, "text_model.encoder.layers.0.mlp.fc1.weight"),
                weight(out.resolve("s3_ema"), Component.TEXT_ENCODER, "text_model.encoder.layers.0.mlp.fc1.weight"));
        assertFalse(java.util.Arrays.equals(weight(init, Component.UNET, "conv_in.weight"),
                weight(out.resolve("s3_ema"), Component.UNET, "conv_in.weight")));
    }

    @Test
    void everyFeatureTogetherResumesBitExactly() throws Exception {
        TrainConfig whole = config("whole", FEATURES, 6);
        ResolvedTrainingConfig opt = optimizer();
        try (Trainer t = new Trainer(whole, opt, null, w -> { })) {
            for (int i = 0; i < 6; i++) {
                assertTrue(Double.isFinite(t.trainStep().loss()));
            }
            assertTrue(Double.isFinite(t.validate()));
            t.saveModel(whole.out().resolve("final"), DType.F32);
        }
        TrainConfig split = config("split", FEATURES, 6);
        Path ckpt = split.out().resolve("checkpoints").resolve("step-000003");
        try (Trainer t = new Trainer(split, opt, null, w -> { })) {
            for (int i = 0; i < 3; i++) {
                t.trainStep();
            }
            t.checkpoint(ckpt);
        }
        assertTrue(Files.isDirectory(ckpt.resolve("model_ema")), "the checkpoint holds the EMA");
        try (Trainer t = new Trainer(split, opt, ckpt, w -> { })) {
            for (int i = 0; i < 3; i++) {
                t.trainStep();
            }
            t.saveModel(split.out().resolve("final"), DType.F32);
        }
        for (String folder : new String[] {"final", "final_ema"}) {
            for (Component c : new Component[] {Component.UNET, Component.TEXT_ENCODER}) {
                SafetensorsFile a = SafetensorsFile.open(DiffusersFolder.weightsFile(whole.out().resolve(folder), c));
                for (String name : a.tensors().keySet()) {
                    assertArrayEquals(a.readFloats(name), weight(split.out().resolve(folder), c, name), folder + " " + name);
                }
            }
        }
        // the trained folder keeps the source's config keys DreamCluster does not read
        JsonNode unet = Json.MAPPER.readTree(whole.out().resolve("final/unet/config.json").toFile());
        assertTrue(unet.get("upcast_attention").asBoolean());
        assertEquals(Json.MAPPER.readTree(tmp.resolve("model/scheduler/scheduler_config.json").toFile()),
                Json.MAPPER.readTree(whole.out().resolve("final_ema/scheduler/scheduler_config.json").toFile()));
    }

    @Test
    void eachFeatureChangesTheStep() throws Exception {
        // a feature removed (or ignored) would leave the loss of the first step unchanged
        double base = firstLoss("'loss_type': 'mse'");
        for (String f : new String[] {"'loss_type': 'huber'", "'loss_type': 'mse_huber'", "'min_snr_gamma': 1.0",
                "'pyramid_noise_discount': 0.5", "'embedding_perturbation': 5.0", "'timestep_start': 900",
                "'flip_p': 1.0", "'shuffle_tags': true, 'loss_type': 'mse'"}) {
            double l = firstLoss(f.contains("loss_type") ? f : f + ", 'loss_type': 'mse'");
            assertTrue(l != base, f + " changed nothing (" + l + ")");
        }
    }

    static void loop(TrainConfig cfg) {
        new TrainLoop(new dev.dreamcluster.config.RunConfig(cfg, optimizer()), null, null, (m, total) -> { }, w -> { }).run();
    }

    static double firstLoss(String extra) throws Exception {
        TrainConfig cfg = config("probe" + Math.abs(extra.hashCode()), extra, 1);
        try (Trainer t = new Trainer(cfg, optimizer(), null, w -> { })) {
            double sum = 0;
            for (int i = 0; i < 3; i++) {
                sum += t.trainStep().loss();
            }
            return sum;
        }
    }

    @Test
    void checkpointCadenceFollowsEpochsAndMinutes() throws Exception {
        // 12 images, 20% held out -> 10 train images, batch 2: 5 steps per epoch; 3 epochs
        TrainConfig from = config("from", "'validation_config': 'val.json', 'save_every_n_epochs': 1,"
                + " 'save_ckpts_from_n_epochs': 2, 'max_epochs': 3", 15);
        loop(from);
        Path ck = from.out().resolve("checkpoints");
        assertFalse(Files.exists(ck.resolve("step-000005")), "epoch 1 is before save_ckpts_from_n_epochs");
        assertTrue(Files.isDirectory(ck.resolve("step-000010")));
        assertTrue(Files.isDirectory(ck.resolve("step-000015")));
        TrainConfig minutes = config("minutes", "'ckpt_every_n_minutes': 1e-9", 3);
        loop(minutes);
        for (int s = 1; s <= 3; s++) {
            assertTrue(Files.isDirectory(minutes.out().resolve("checkpoints").resolve(String.format("step-%06d", s))), "step " + s);
        }
        // validation every 0.5 epochs: every 2 of the 5 steps per epoch
        try (Trainer t = new Trainer(from, optimizer(), null, w -> { })) {
            assertEquals(2, t.valEveryNSteps());
        }
    }
}
