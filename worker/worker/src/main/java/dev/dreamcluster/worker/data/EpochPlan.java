package dev.dreamcluster.worker.data;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * The batches of one epoch, a pure function of (items, buckets, batch size, seed, epoch):
 * multipliers (whole part repeated, fractional part sampled), bucket grouping, shuffling, runt
 * padding, caption dropout (per image when its folder sets one), tag shuffling and horizontal flips
 * (drawn only for images that need them, so a plan without them is unchanged). Every node computes the same plan, so a rank can take its slice of
 * each global batch, and a resumed run continues at the same position.
 */
public final class EpochPlan {
    private EpochPlan() {}

    public static List<Batch> plan(List<ImageItem> items, AspectBuckets buckets, int batchSize, double condDropout,
            long seed, int epoch) {
        if (batchSize < 1) {
            throw new IllegalArgumentException("batch_size must be >= 1, got " + batchSize);
        }
        SplittableRandom rnd = new SplittableRandom(seed * 0x9E3779B97F4A7C15L + epoch + 1);
        List<ImageItem> expanded = new ArrayList<>();
        for (ImageItem it : items) {
            int whole = (int) Math.floor(it.multiply());
            for (int i = 0; i < whole; i++) {
                expanded.add(it);
            }
            if (rnd.nextDouble() < it.multiply() - whole) {
                expanded.add(it);
            }
        }
        Map<String, List<ImageItem>> byBucket = new LinkedHashMap<>();
        Map<String, int[]> sizes = new LinkedHashMap<>();
        for (ImageItem it : expanded) {
            int[] b = buckets.forSize(it.width(), it.height());
            String key = b[0] + "x" + b[1];
            byBucket.computeIfAbsent(key, k -> new ArrayList<>()).add(it);
            sizes.put(key, b);
        }
        List<Batch> batches = new ArrayList<>();
        for (Map.Entry<String, List<ImageItem>> e : byBucket.entrySet()) {
            List<ImageItem> list = e.getValue();
            shuffle(list, rnd);
            for (int i = 0; i < list.size(); i += batchSize) {
                List<ImageItem> b = new ArrayList<>(list.subList(i, Math.min(list.size(), i + batchSize)));
                while (b.size() < batchSize) {
                    b.add(list.get(rnd.nextInt(list.size()))); // runt: pad with random duplicates of its bucket
                }
                List<String> captions = new ArrayList<>();
                List<Boolean> flips = new ArrayList<>();
                for (ImageItem it : b) {
                    double p = it.condDropout() != null ? it.condDropout() : condDropout;
                    captions.add(rnd.nextDouble() < p ? " " : it.shuffleTags() ? shuffledTags(it, rnd) : it.caption());
                    flips.add(it.flipP() > 0 && rnd.nextDouble() < it.flipP());
                }
                int[] size = sizes.get(e.getKey());
                batches.add(new Batch(List.copyOf(b), List.copyOf(captions), size[0], size[1], flips));
            }
        }
        shuffle(batches, rnd);
        return batches;
    }

    /**
     * The caption with its tags (the comma-separated parts after the main prompt) shuffled, the first
     * keepTags of them kept in place (EveryDream2 intends this; its code clamps keep_tags to 0).
     */
    static String shuffledTags(ImageItem it, SplittableRandom rnd) {
        String[] parts = it.caption().split(",");
        if (parts.length < 3) {
            return it.caption();
        }
        List<String> tags = new ArrayList<>();
        for (int i = 1; i < parts.length; i++) {
            tags.add(parts[i].strip());
        }
        int keep = Math.min(it.keepTags(), tags.size());
        List<String> rest = new ArrayList<>(tags.subList(keep, tags.size()));
        shuffle(rest, rnd);
        List<String> out = new ArrayList<>(tags.subList(0, keep));
        out.addAll(rest);
        return parts[0].strip() + ", " + String.join(", ", out);
    }

    /** Fisher-Yates, the one shuffle every plan and split uses. */
    public static <T> void shuffle(List<T> l, SplittableRandom rnd) {
        for (int i = l.size() - 1; i > 0; i--) {
            int j = rnd.nextInt(i + 1);
            T t = l.get(i);
            l.set(i, l.get(j));
            l.set(j, t);
        }
    }
}
