package dev.dreamcluster.worker.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dreamcluster.config.ConfigError;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * EveryDream2's per-folder and per-image files (global.yaml, local.yaml, caption .yaml,
 * cond_dropout.txt, flip_p.txt, shuffle_tags.txt, loss_scale.txt), flips and tag shuffling.
 */
class EveryDream2DataTest {
    /** A folder tree of copies of one synthetic PNG: root/{a,b}.png, root/sub/{c,d}.png, root/sub/deeper/e.png. */
    static Path tree(Path tmp) throws Exception {
        Path src = tmp.resolve("src");
        SyntheticDataset.write(src, 1, 48, 1);
        Path png;
        try (var l = Files.list(src)) {
            png = l.filter(p -> p.toString().endsWith(".png")).findFirst().orElseThrow();
        }
        Path root = tmp.resolve("root");
        Files.createDirectories(root.resolve("sub/deeper"));
        for (String n : List.of("a.png", "b.png", "sub/c.png", "sub/d.png", "sub/deeper/e.png")) {
            Files.copy(png, root.resolve(n));
        }
        return root;
    }

    static Map<String, ImageItem> byName(List<ImageItem> items) {
        return items.stream().collect(Collectors.toMap(i -> i.path().getFileName().toString(), Function.identity()));
    }

    @Test
    void shouldFoldGlobalLocalAndSidecarConfigsAsEveryDream2Does(@TempDir Path tmp) throws Exception {
        Path root = tree(tmp);
        Files.writeString(root.resolve("global.yaml"), "main_prompt: a photo\ntags: [global tag]\nflip_p: 0.25\n");
        Files.writeString(root.resolve("sub/local.yaml"), "main_prompt: a sub photo\ncond_dropout: 0.5\nmultiply: 2\n");
        Files.writeString(root.resolve("sub/flip_p.txt"), "0.75\n");
        Files.writeString(root.resolve("sub/shuffle_tags.txt"), "");
        Files.writeString(root.resolve("sub/loss_scale.txt"), "0.5");
        Files.writeString(root.resolve("sub/deeper/cond_dropout.txt"), "0.0");
        Files.writeString(root.resolve("b.txt"), "a cat,  sitting ,on a mat");
        Files.writeString(root.resolve("sub/d.yaml"), "caption: a dog, running\ntags:\n  - tag: outdoors\n    weight: 1.0\n");
        List<String> notes = new ArrayList<>();
        Map<String, ImageItem> items = byName(DatasetScanner.scan(root, new DataOptions(0.1, false, 1), notes::add));
        ImageItem a = items.get("a.png");
        assertEquals("a photo, global tag", a.caption());
        assertEquals(0.25, a.flipP()); // global.yaml beats the train.json default
        assertNull(a.condDropout());
        assertEquals(1.0, a.multiply());
        assertFalse(a.shuffleTags());
        // the sidecar's main prompt wins; tags are the union, newest first; .txt parts are stripped
        assertEquals("a cat, sitting, on a mat, global tag", items.get("b.png").caption());
        ImageItem c = items.get("c.png");
        assertEquals("a sub photo, global tag", c.caption());
        assertEquals(0.5, c.condDropout());
        assertEquals(0.75, c.flipP()); // flip_p.txt before local.yaml, which does not set it
        assertEquals(2.0, c.multiply());
        assertTrue(c.shuffleTags());
        assertEquals(0.5, c.lossScale());
        assertEquals(1, c.keepTags());
        assertEquals("a dog, running, outdoors, global tag", items.get("d.png").caption());
        // local files apply to their own folder only; global.yaml is inherited
        ImageItem e = items.get("e.png");
        assertEquals("a photo, global tag", e.caption());
        assertEquals(0.0, e.condDropout());
        assertEquals(0.25, e.flipP());
        assertEquals(1.0, e.multiply());
        assertFalse(e.shuffleTags());
        assertEquals(1.0, e.lossScale());
        assertEquals(List.of(), notes);
    }

    @Test
    void shouldRefuseBadFolderFilesNamingTheFile(@TempDir Path tmp) throws Exception {
        Path root = tree(tmp);
        Files.writeString(root.resolve("flip_p.txt"), "often");
        ConfigError e = assertThrows(ConfigError.class, () -> DatasetScanner.scan(root, w -> { }));
        assertTrue(e.getMessage().startsWith(root.resolve("flip_p.txt") + ": \"often\" is not allowed"), e.getMessage());
        Files.delete(root.resolve("flip_p.txt"));
        Files.writeString(root.resolve("local.yaml"), "multiply: [1, 2]\n");
        assertThrows(ConfigError.class, () -> DatasetScanner.scan(root, w -> { }));
        Files.writeString(root.resolve("local.yaml"), "rating: 2\n");
        List<String> notes = new ArrayList<>();
        DatasetScanner.scan(root, notes::add);
        assertTrue(notes.get(0).contains("rating has no effect here"), notes.toString());
    }

    @Test
    void shouldFlipAndShuffleTagsInThePlanOnlyWhereAsked(@TempDir Path tmp) throws Exception {
        Path root = tree(tmp);
        Files.writeString(root.resolve("flip_p.txt"), "1");
        Files.writeString(root.resolve("a.txt"), "main, t1, t2, t3, t4, t5");
        Files.writeString(root.resolve("b.txt"), "main, t1, t2, t3, t4, t5");
        List<ImageItem> items = DatasetScanner.scan(root, new DataOptions(0, true, 2), w -> { });
        AspectBuckets buckets = new AspectBuckets(64);
        boolean shuffledSeen = false;
        for (int epoch = 0; epoch < 4; epoch++) {
            for (Batch b : EpochPlan.plan(items, buckets, 1, 0, 5, epoch)) {
                String name = b.items().get(0).path().getFileName().toString();
                boolean inRoot = b.items().get(0).path().getParent().equals(root);
                assertEquals(inRoot, b.flipped(0), name); // flip_p.txt 1 in the root folder, 0 below it
                if (name.equals("a.png") || name.equals("b.png")) {
                    String cap = b.captions().get(0);
                    assertTrue(cap.startsWith("main, t1, t2, "), cap); // main prompt and keep_tags 2 stay in place
                    assertEquals(List.of("t1", "t2", "t3", "t4", "t5"),
                            List.of(cap.substring("main, ".length()).split(", ")).stream().sorted().toList());
                    shuffledSeen |= !cap.equals("main, t1, t2, t3, t4, t5");
                }
            }
        }
        assertTrue(shuffledSeen, "tags were shuffled");
        // without flips or shuffling, the plan is the one DreamCluster drew before these features
        List<ImageItem> plain = DatasetScanner.scan(root.resolve("sub"), w -> { });
        assertTrue(EpochPlan.plan(plain, buckets, 2, 0.1, 5, 0).stream().noneMatch(b -> b.flips().contains(true)));
    }

    @Test
    void flippedImagesAreMirrored(@TempDir Path tmp) throws Exception {
        java.awt.image.BufferedImage img = new java.awt.image.BufferedImage(64, 64, java.awt.image.BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < 64; y++) {
            for (int x = 0; x < 64; x++) {
                img.setRGB(x, y, (x * 4) << 16 | (y * 4) << 8 | (x < 16 ? 255 : 0));
            }
        }
        Path png = tmp.resolve("ramp.png");
        javax.imageio.ImageIO.write(img, "png", png.toFile());
        ImageItem it = new ImageItem(png, "ramp", 1, 64, 64);
        float[] a = new float[3 * 64 * 64];
        float[] b = new float[3 * 64 * 64];
        ImageLoader.load(it, 64, 64, a, 0, false);
        ImageLoader.load(it, 64, 64, b, 0, true);
        boolean differs = false;
        for (int c = 0; c < 3; c++) {
            for (int y = 0; y < 64; y++) {
                for (int x = 0; x < 64; x++) {
                    assertEquals(a[c * 4096 + y * 64 + x], b[c * 4096 + y * 64 + 63 - x]);
                    differs |= a[c * 4096 + y * 64 + x] != b[c * 4096 + y * 64 + x];
                }
            }
        }
        assertTrue(differs, "the ramp is not symmetric, so a flip changes it");
    }
}
