package dev.dreamcluster.worker.train;

import dev.dreamcluster.config.TrainConfig;
import dev.dreamcluster.worker.train.data.DataSplit;
import dev.dreamcluster.config.TrainFeatures;
import dev.dreamcluster.config.LossType;
import dev.dreamcluster.config.ValidationConfig;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.worker.data.ImageItem;
import dev.dreamcluster.worker.data.SyntheticDataset;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** train.json's EveryDream2 feature keys: parsing, defaults, seed -1, the JSON round trip and the held-out split. */
class TrainFeaturesTest {
    static final String ALL = "{'data_root': 'data', 'resume_ckpt': 'model', 'seed': -1, 'loss_type': 'huber_mse',"
            + " 'min_snr_gamma': 5.0, 'pyramid_noise_discount': 0.03, 'embedding_perturbation': 0.1, 'timestep_start': 100,"
            + " 'timestep_end': 900, 'flip_p': 0.5, 'shuffle_tags': true, 'keep_tags': 1, 'validation_config': 'val.json',"
            + " 'ema_decay_rate': 0.9, 'ema_strength_target': null, 'ema_update_interval': 3, 'save_ckpts_from_n_epochs': 2}";

    static Path write(Path dir, String name, String json) throws Exception {
        Path p = dir.resolve(name);
        Files.writeString(p, json.replace('\'', '"'));
        return p;
    }

    @Test
    void defaultsFollowEveryDream2() throws Exception {
        Path dir = Files.createTempDirectory("tf");
        TrainConfig c = TrainConfig.load(write(dir, "t.json", "{'data_root': 'd', 'resume_ckpt': 'm'}"), Map.of());
        assertEquals(TrainFeatures.DEFAULTS, c.features());
        assertEquals(LossType.MSE_HUBER, c.features().lossType());
        assertEquals(555, c.seed());
        // EveryDream2's shipped train.json writes ema_update_interval and the EMA keys as null: defaults apply
        TrainConfig n = TrainConfig.load(write(dir, "n.json", "{'data_root': 'd', 'resume_ckpt': 'm', 'ema_update_interval': null,"
                + " 'pyramid_noise_discount': null, 'min_snr_gamma': null}"), Map.of());
        assertEquals(TrainFeatures.DEFAULTS, n.features());
    }

    @Test
    void everyKeyRoundTripsThroughToJson(@TempDir Path dir) throws Exception {
        write(dir, "val.json", "{'val_split_mode': 'automatic', 'auto_split_proportion': 0.25, 'seed': 7, 'every_n_epochs': 0.5}");
        TrainConfig a = TrainConfig.load(write(dir, "train.json", ALL), Map.of());
        TrainFeatures f = a.features();
        assertEquals(LossType.HUBER_MSE, f.lossType());
        assertEquals(5.0, f.minSnrGamma());
        assertEquals(0.03, f.pyramidNoiseDiscount());
        assertEquals(0.1, f.embeddingPerturbation());
        assertEquals(100, f.timestepStart());
        assertEquals(900, f.timestepEnd());
        assertEquals(0.5, f.flipP());
        assertTrue(f.shuffleTags());
        assertEquals(1, f.keepTags());
        assertEquals(new ValidationConfig(true, "automatic", 0.25, null, 7, 0.5), f.validation());
        assertEquals(0.9, f.emaDecayRate());
        assertEquals(3, f.emaUpdateInterval());
        assertEquals(2, f.saveCkptsFromNEpochs());
        // seed -1 drew a seed in [0, 2^30), which toJson records, so the lead's plan and every checkpoint carry it
        assertTrue(a.seed() >= 0 && a.seed() < (1 << 30), Long.toString(a.seed()));
        Path again = dir.resolve("elsewhere");
        Files.createDirectories(again);
        Files.writeString(again.resolve("t.json"), a.toJson().toString());
        TrainConfig b = TrainConfig.load(again.resolve("t.json"), Map.of());
        assertEquals(a, b);
        assertEquals(a, TrainConfig.fromJson(a.toJson())); // what a worker gets from the run plan
    }

    @Test
    void badValuesAreRefusedNamingTheKey(@TempDir Path dir) throws Exception {
        String base = "{'data_root': 'd', 'resume_ckpt': 'm', ";
        for (String[] c : new String[][] {
                {"'loss_type': 'l1'}", "loss_type: \"l1\" is not allowed (one of mse, huber, mse_huber, huber_mse)"},
                {"'timestep_start': 500, 'timestep_end': 400}", "timestep_start/timestep_end: 500/400"},
                {"'flip_p': 1.5}", "flip_p: 1.5"},
                {"'ema_decay_rate': 1.0}", "ema_decay_rate: 1.0"},
                {"'validation_config': 'missing.json'}", "validation config file \"missing.json\" does not exist"}}) {
            ConfigError e = assertThrows(ConfigError.class, () -> TrainConfig.load(write(dir, "t.json", base + c[0]), Map.of()));
            assertTrue(e.getMessage().contains(c[1]), e.getMessage());
        }
        write(dir, "v.json", "{'stabilize_training_loss': true}");
        assertThrows(ConfigError.class, () -> TrainConfig.load(write(dir, "t.json", base + "'validation_config': 'v.json'}"),
                Map.of()));
    }

    @Test
    void heldOutImagesAreNeverTrainedOn(@TempDir Path dir) throws Exception {
        SyntheticDataset.write(dir.resolve("data"), 20, 48, 1);
        write(dir, "val.json", "{'auto_split_proportion': 0.15, 'seed': 3}");
        TrainConfig cfg = TrainConfig.load(write(dir, "t.json", "{'data_root': 'data', 'resume_ckpt': 'm', 'flip_p': 0.5,"
                + " 'validation_config': 'val.json'}"), Map.of());
        DataSplit s = DataSplit.of(cfg, w -> { });
        assertEquals(3, s.validation().size()); // ceil(0.15 x 20)
        assertEquals(17, s.train().size());
        Set<Path> trained = new HashSet<>();
        s.train().forEach(i -> trained.add(i.path()));
        for (ImageItem v : s.validation()) {
            assertTrue(!trained.contains(v.path()), v.path() + " is held out");
            assertEquals(0, v.flipP());
            assertEquals(1, v.multiply());
        }
        assertEquals(s.validation(), DataSplit.of(cfg, w -> { }).validation(), "the split is a function of the seed");
        write(dir, "val.json", "{'auto_split_proportion': 0.15, 'seed': 4}");
        TrainConfig other = TrainConfig.load(dir.resolve("t.json"), Map.of());
        assertNotEquals(s.validation(), DataSplit.of(other, w -> { }).validation());
        // manual: another folder, all of data_root trains
        SyntheticDataset.write(dir.resolve("val"), 4, 48, 2);
        write(dir, "val.json", "{'val_split_mode': 'manual', 'manual_data_root': 'val'}");
        DataSplit m = DataSplit.of(TrainConfig.load(dir.resolve("t.json"), Map.of()), w -> { });
        assertEquals(20, m.train().size());
        assertEquals(4, m.validation().size());
        assertTrue(m.validation().stream().allMatch(i -> i.path().startsWith(dir.resolve("val"))));
        // no validation_config: the first val_count training images (DreamCluster's probe)
        TrainConfig none = TrainConfig.load(write(dir, "n.json", "{'data_root': 'data', 'resume_ckpt': 'm', 'val_count': 2}"),
                Map.of());
        assertEquals(List.copyOf(DataSplit.of(none, w -> { }).train().subList(0, 2)), DataSplit.of(none, w -> { }).validation());
        assertNull(none.features().validation());
    }
}
