package dev.dreamcluster.worker.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Scanning, captions, multipliers, buckets and seeded batch plans. */
class DataTest {
    @Test
    void shouldScanCaptionsMultipliersAndSkipUnreadableImages(@TempDir Path dir) throws Exception {
        SyntheticDataset.write(dir, 10, 64, 1);
        Files.writeString(dir.resolve("broken.png"), "not an image");
        Files.createDirectories(dir.resolve(".hidden"));
        Files.copy(dir.resolve(Files.list(dir).filter(p -> p.toString().endsWith(".png") && !p.toString().contains("broken"))
                .findFirst().orElseThrow().getFileName()), dir.resolve(".hidden/x.png"));
        Files.copy(dir.resolve("broken.png"), dir.resolve("cat_01.jpg"));
        List<String> warnings = new ArrayList<>();
        List<ImageItem> items = DatasetScanner.scan(dir, warnings::add);
        assertEquals(10, items.size());
        assertEquals(2, warnings.size(), warnings.toString());
        assertTrue(items.stream().allMatch(i -> i.caption().startsWith("a ") && i.caption().endsWith(" background")));
        assertEquals(2, items.stream().filter(i -> i.multiply() == 1.5).count());
        Path named = dir.resolve("sub");
        Files.createDirectories(named);
        Files.copy(items.get(0).path(), named.resolve("a dog_by the sea.png"));
        assertEquals("a dog", DatasetScanner.caption(named.resolve("a dog_by the sea.png")));
    }

    @Test
    void shouldBucketByAspectAndBatchHomogeneously(@TempDir Path dir) {
        AspectBuckets b = new AspectBuckets(64);
        assertEquals(64, b.forSize(100, 100)[0]);
        AspectBuckets b256 = new AspectBuckets(256);
        int[] wide = b256.forSize(300, 200);
        assertTrue(wide[0] > wide[1] && wide[0] * wide[1] <= 256 * 256, wide[0] + "x" + wide[1]);
        SyntheticDataset.write(dir, 30, 64, 2);
        List<ImageItem> items = DatasetScanner.scan(dir, w -> { });
        List<Batch> e0 = EpochPlan.plan(items, b256, 4, 0.0, 7, 0);
        assertEquals(e0.toString(), EpochPlan.plan(items, b256, 4, 0.0, 7, 0).toString(), "same seed and epoch, same plan");
        assertTrue(!e0.toString().equals(EpochPlan.plan(items, b256, 4, 0.0, 7, 1).toString()), "epochs differ");
        for (Batch batch : e0) {
            assertEquals(4, batch.items().size());
            for (ImageItem it : batch.items()) {
                int[] s = b256.forSize(it.width(), it.height());
                assertEquals(batch.width(), s[0]);
                assertEquals(batch.height(), s[1]);
            }
        }
        long dropped = EpochPlan.plan(items, b256, 4, 1.0, 7, 0).stream().flatMap(x -> x.captions().stream())
                .filter(c -> c.equals(" ")).count();
        assertTrue(dropped > 0);
        float[] px = new float[3 * 64 * 96];
        ImageLoader.load(items.get(1), 96, 64, px, 0);
        for (float f : px) {
            assertTrue(f >= -1f && f <= 1f);
        }
    }
}
