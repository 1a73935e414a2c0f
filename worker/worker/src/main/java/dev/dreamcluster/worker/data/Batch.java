package dev.dreamcluster.worker.data;

import java.util.Collections;
import java.util.List;

/**
 * One bucket-homogeneous batch: the items (a runt batch is padded with duplicates), the bucket size
 * every image is resized to, the captions after conditional dropout and tag shuffling, and which
 * images are flipped horizontally.
 */
public record Batch(List<ImageItem> items, List<String> captions, int width, int height, List<Boolean> flips) {

    public Batch {
        flips = flips == null ? Collections.nCopies(items.size(), Boolean.FALSE) : List.copyOf(flips);
    }

    public Batch(List<ImageItem> items, List<String> captions, int width, int height) {
        this(items, captions, width, height, null);
    }

    /** Items lo..hi-1 (a rank's slice of a global batch). */
    public Batch slice(int lo, int hi) {
        return new Batch(items.subList(lo, hi), captions.subList(lo, hi), width, height, flips.subList(lo, hi));
    }

    public boolean flipped(int i) {
        return flips.get(i);
    }
}
