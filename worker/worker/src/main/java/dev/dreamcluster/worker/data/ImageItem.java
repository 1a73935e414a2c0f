package dev.dreamcluster.worker.data;

import java.nio.file.Path;

/**
 * One training image: its file, caption, EveryDream multiplier and pixel size (read from the header
 * at scan time, so unreadable files are found before training starts), and its resolved per-image
 * options (folder files and yaml over the train.json defaults).
 *
 * @param condDropout this image's caption dropout probability, or null for train.json's cond_dropout
 * @param lossScale EveryDream2's per-image loss weight (loss_scale.txt / yaml)
 */
public record ImageItem(Path path, String caption, double multiply, int width, int height, Double condDropout,
        double flipP, boolean shuffleTags, int keepTags, double lossScale) {

    public ImageItem(Path path, String caption, double multiply, int width, int height) {
        this(path, caption, multiply, width, height, null, 0, false, 0, 1);
    }

    /** The same image with no flip and multiplier 1 (EveryDream2's validation items). */
    public ImageItem forValidation() {
        return new ImageItem(path, caption, 1, width, height, condDropout, 0, false, 0, lossScale);
    }
}
