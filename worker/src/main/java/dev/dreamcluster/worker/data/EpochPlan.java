package dev.dreamcluster.worker.data;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * The batches of one epoch, a pure function of (items, buckets, batch size, seed, epoch):
 * multipliers (whole part repeated, fractional part sampled), bucket grouping, shuffling, runt
 * padding, and caption dropout. Every node computes the same plan, so a rank can take its slice of
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
                for (ImageItem it : b) {
                    captions.add(rnd.nextDouble() < condDropout ? " " : it.caption());
                }
                int[] size = sizes.get(e.getKey());
                batches.add(new Batch(List.copyOf(b), List.copyOf(captions), size[0], size[1]));
            }
        }
        shuffle(batches, rnd);
        return batches;
    }

    static <T> void shuffle(List<T> l, SplittableRandom rnd) {
        for (int i = l.size() - 1; i > 0; i--) {
            int j = rnd.nextInt(i + 1);
            T t = l.get(i);
            l.set(i, l.get(j));
            l.set(j, t);
        }
    }
}
