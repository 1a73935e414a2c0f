package dev.dreamcluster.worker.data;

import java.util.List;

/**
 * One bucket-homogeneous batch: the items (a runt batch is padded with duplicates), the bucket size
 * every image is resized to, and the captions after conditional dropout.
 */
public record Batch(List<ImageItem> items, List<String> captions, int width, int height) {}
