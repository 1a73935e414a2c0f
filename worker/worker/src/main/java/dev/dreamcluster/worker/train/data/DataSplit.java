package dev.dreamcluster.worker.train.data;

import dev.dreamcluster.config.TrainConfig;
import dev.dreamcluster.config.TrainFeatures;
import dev.dreamcluster.config.ValidationConfig;
import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.worker.data.DataOptions;
import dev.dreamcluster.worker.data.DatasetScanner;
import dev.dreamcluster.worker.data.EpochPlan;
import dev.dreamcluster.worker.data.ImageItem;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Consumer;

/**
 * The training images and the validation images of a run. With a {@link ValidationConfig} the
 * validation images are held out (automatic: ceil(proportion x n), at least one, chosen by its seed
 * from the path-sorted list; manual: another folder) and never trained on; validation items have no
 * flip and multiplier 1, as in EveryDream2. Without one, DreamCluster's older behaviour: the first
 * val_count training images (which are also trained on: a training-loss probe, not validation).
 */
public record DataSplit(List<ImageItem> train, List<ImageItem> validation) {

    public static DataSplit of(TrainConfig cfg, Consumer<String> warn) {
        TrainFeatures f = cfg.features();
        DataOptions options = new DataOptions(f.flipP(), f.shuffleTags(), f.keepTags());
        List<ImageItem> all = DatasetScanner.scan(cfg.dataRoot(), options, warn);
        ValidationConfig v = f.validation();
        if (v == null) {
            return new DataSplit(all, all.subList(0, Math.min(cfg.valCount(), all.size())));
        }
        if (!v.active()) {
            return new DataSplit(all, List.of());
        }
        if (v.valSplitMode().equals("manual")) {
            List<ImageItem> val = DatasetScanner.scan(v.manualDataRoot(), DataOptions.NONE, warn);
            if (val.isEmpty()) {
                throw new ConfigError("validation_config at manual_data_root: " + v.manualDataRoot() + " holds no readable images");
            }
            return new DataSplit(all, val.stream().map(ImageItem::forValidation).toList());
        }
        int count = Math.max(1, (int) Math.ceil(v.autoSplitProportion() * all.size()));
        if (count >= all.size()) {
            throw new ConfigError("validation_config at auto_split_proportion: " + v.autoSplitProportion() + " of "
                    + all.size() + " images leaves nothing to train on (allowed: a smaller fraction, or more images)");
        }
        List<ImageItem> shuffled = new ArrayList<>(all);
        shuffled.sort(Comparator.comparing(i -> i.path().toString()));
        EpochPlan.shuffle(shuffled, new SplittableRandom(v.seed()));
        List<ImageItem> val = shuffled.subList(0, count).stream().map(ImageItem::forValidation)
                .sorted(Comparator.comparing(i -> i.path().toString())).toList();
        List<ImageItem> train = new ArrayList<>(all);
        train.removeAll(shuffled.subList(0, count));
        return new DataSplit(List.copyOf(train), val);
    }
}
