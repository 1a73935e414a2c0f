package dev.dreamcluster.worker.data;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.Map;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.function.Consumer;
import java.util.stream.Stream;
import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.stream.ImageInputStream;

/**
 * Walks an EveryDream data root: every jpg/jpeg/png/webp below it (hidden entries skipped), each
 * image's configuration folded as EveryDream2 does ({@link ImageConfig}): {@code global.yaml}
 * (inherited by subfolders), then the folder's own {@code multiply.txt}, {@code cond_dropout.txt},
 * {@code flip_p.txt}, {@code local.yaml}, {@code loss_scale.txt}, {@code shuffle_tags.txt}, then the
 * image's {@code .txt}, {@code .caption}, {@code .yml}, {@code .yaml} sidecars; with no main prompt,
 * the file name up to the first {@code _}. Order is sorted by path, so every node sees the same list.
 */
public final class DatasetScanner {
    static final List<String> EXTENSIONS = List.of("jpg", "jpeg", "png", "webp");

    private DatasetScanner() {}

    /** Items under {@code root}; each unreadable image is skipped with one call of {@code warn}. */
    public static List<ImageItem> scan(Path root, Consumer<String> warn) {
        return scan(root, DataOptions.NONE, warn);
    }

    /** Items under {@code root} with {@code defaults} where no folder or yaml file sets an option. */
    public static List<ImageItem> scan(Path root, DataOptions defaults, Consumer<String> warn) {
        if (!Files.isDirectory(root)) {
            throw new dev.dreamcluster.config.ConfigError("data_root: " + dev.dreamcluster.config.Json.quote(root.toString())
                    + " is not a folder (allowed: a folder of captioned images)");
        }
        List<Path> images;
        try (Stream<Path> walk = Files.walk(root)) {
            images = walk.filter(Files::isRegularFile)
                    .filter(p -> !hidden(root, p))
                    .filter(p -> EXTENSIONS.contains(extension(p)))
                    .sorted(Comparator.comparing(Path::toString))
                    .toList();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list " + root, e);
        }
        List<ImageItem> out = new ArrayList<>();
        Map<Path, ImageConfig> globals = new HashMap<>();
        Map<Path, ImageConfig> locals = new HashMap<>();
        for (Path p : images) {
            int[] size = imageSize(p);
            if (size == null) {
                warn.accept("skipping unreadable image " + p);
                continue;
            }
            Path dir = p.getParent();
            ImageConfig c = globalConfig(root.toAbsolutePath().normalize(), dir.toAbsolutePath().normalize(), globals, warn)
                    .merge(locals.computeIfAbsent(dir, d -> localConfig(d, warn))).merge(sidecars(p, warn));
            double multiply = c.multiply() == null ? 1.0 : c.multiply();
            out.add(new ImageItem(p, captionOrName(c, p), multiply == 0 ? 1.0 : multiply, size[0], size[1], c.condDropout(),
                    c.flipP() != null ? c.flipP() : defaults.flipP(),
                    defaults.shuffleTags() || Boolean.TRUE.equals(c.shuffleTags()), defaults.keepTags(),
                    c.lossScale() == null ? 1.0 : c.lossScale()));
        }
        return out;
    }

    /** global.yaml of {@code dir} over its parents' (up to the data root). */
    private static ImageConfig globalConfig(Path root, Path dir, Map<Path, ImageConfig> memo, Consumer<String> warn) {
        ImageConfig known = memo.get(dir);
        if (known != null) {
            return known;
        }
        ImageConfig parent = dir.equals(root) || dir.getParent() == null ? ImageConfig.EMPTY
                : globalConfig(root, dir.getParent(), memo, warn);
        ImageConfig c = parent;
        for (String name : List.of("global.yaml", "global.yml")) {
            if (Files.isRegularFile(dir.resolve(name))) {
                c = c.merge(ImageConfig.fromYaml(dir.resolve(name), warn));
            }
        }
        memo.put(dir, c);
        return c;
    }

    /** The options of one folder, for its own images only (EveryDream2's __local_cfg). */
    private static ImageConfig localConfig(Path dir, Consumer<String> warn) {
        ImageConfig c = ImageConfig.EMPTY;
        Double multiply = null;
        if (Files.isRegularFile(dir.resolve("multiply.txt"))) {
            multiply = multiply(dir, warn);
        }
        c = c.merge(new ImageConfig(List.of(), List.of(), multiply, number(dir, "cond_dropout.txt", 1),
                number(dir, "flip_p.txt", 1), null, null));
        for (String name : List.of("local.yaml", "local.yml")) {
            if (Files.isRegularFile(dir.resolve(name))) {
                c = c.merge(ImageConfig.fromYaml(dir.resolve(name), warn));
            }
        }
        if (Files.isRegularFile(dir.resolve("batch_id.txt"))) {
            warn.accept(dir.resolve("batch_id.txt") + " has no effect here (named batches are not implemented)");
        }
        c = c.merge(new ImageConfig(List.of(), List.of(), null, null, null,
                Files.isRegularFile(dir.resolve("shuffle_tags.txt")) ? Boolean.TRUE : null,
                number(dir, "loss_scale.txt", Double.MAX_VALUE)));
        return c;
    }

    private static Double number(Path dir, String name, double max) {
        Path f = dir.resolve(name);
        return Files.isRegularFile(f) ? ImageConfig.readNumber(f, 0, max) : null;
    }

    /** The image's .txt, .caption, .yml and .yaml sidecars, folded in that order. */
    private static ImageConfig sidecars(Path image, Consumer<String> warn) {
        String stem = stem(image);
        ImageConfig c = ImageConfig.EMPTY;
        for (String ext : List.of(".txt", ".caption", ".yml", ".yaml")) {
            Path side = image.resolveSibling(stem + ext);
            if (Files.isRegularFile(side)) {
                c = c.merge(ext.startsWith(".y") ? ImageConfig.fromYaml(side, warn) : ImageConfig.fromTextFile(side));
            }
        }
        return c;
    }

    private static String captionOrName(ImageConfig c, Path image) {
        if (c.mainPrompts().isEmpty()) {
            String stem = stem(image);
            int us = stem.indexOf('_');
            c = c.merge(ImageConfig.fromCaptionText(us < 0 ? stem : stem.substring(0, us)));
        }
        return c.caption();
    }

    static boolean hidden(Path root, Path p) {
        for (Path part : root.relativize(p)) {
            if (part.toString().startsWith(".")) {
                return true;
            }
        }
        return false;
    }

    static String extension(Path p) {
        String n = p.getFileName().toString();
        int dot = n.lastIndexOf('.');
        return dot < 0 ? "" : n.substring(dot + 1).toLowerCase(Locale.ROOT);
    }

    static String stem(Path p) {
        String n = p.getFileName().toString();
        int dot = n.lastIndexOf('.');
        return dot < 0 ? n : n.substring(0, dot);
    }

    /** The caption of an image from its sidecars alone, else the file name before the first '_'. */
    static String caption(Path image) {
        return captionOrName(sidecars(image, w -> { }), image);
    }

    /** multiply.txt of a folder (default 1; 0 means 1, as EveryDream2 reads it). */
    static double multiply(Path folder, Consumer<String> warn) {
        Path f = folder.resolve("multiply.txt");
        if (!Files.isRegularFile(f)) {
            return 1.0;
        }
        try {
            double m = Double.parseDouble(Files.readString(f, StandardCharsets.UTF_8).strip());
            if (!(m >= 0) || !Double.isFinite(m)) {
                throw new NumberFormatException("negative");
            }
            return m == 0 ? 1.0 : m;
        } catch (NumberFormatException | IOException e) {
            warn.accept("ignoring " + f + ": not a number >= 0");
            return 1.0;
        }
    }

    /** Width and height from the image header, or null if no reader can open it. */
    static int[] imageSize(Path p) {
        try (ImageInputStream in = ImageIO.createImageInputStream(p.toFile())) {
            if (in == null) {
                return null;
            }
            Iterator<ImageReader> readers = ImageIO.getImageReaders(in);
            if (!readers.hasNext()) {
                return null;
            }
            ImageReader r = readers.next();
            try {
                r.setInput(in);
                return new int[] {r.getWidth(0), r.getHeight(0)};
            } finally {
                r.dispose();
            }
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }
}
