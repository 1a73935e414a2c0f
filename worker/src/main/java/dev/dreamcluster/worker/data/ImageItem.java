package dev.dreamcluster.worker.data;

import java.nio.file.Path;

/**
 * One training image: its file, caption, EveryDream multiplier and pixel size (read from the header
 * at scan time, so unreadable files are found before training starts).
 */
public record ImageItem(Path path, String caption, double multiply, int width, int height) {}
