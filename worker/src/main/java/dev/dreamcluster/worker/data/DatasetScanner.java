package dev.dreamcluster.worker.data;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.function.Consumer;
import java.util.stream.Stream;
import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.stream.ImageInputStream;

/**
 * Walks an EveryDream data root: every jpg/jpeg/png/webp below it (hidden entries skipped), captions
 * from a sidecar {@code .txt} or {@code .caption} (the latter wins when both exist) or else the file
 * name up to the first {@code _}, and {@code multiply.txt} applying to the images of its own folder.
 * Order is sorted by path, so every node sees the same list.
 */
public final class DatasetScanner {
    static final List<String> EXTENSIONS = List.of("jpg", "jpeg", "png", "webp");

    private DatasetScanner() {}

    /** Items under {@code root}; each unreadable image is skipped with one call of {@code warn}. */
    public static List<ImageItem> scan(Path root, Consumer<String> warn) {
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
        for (Path p : images) {
            int[] size = imageSize(p);
            if (size == null) {
                warn.accept("skipping unreadable image " + p);
                continue;
            }
            out.add(new ImageItem(p, caption(p), multiply(p.getParent(), warn), size[0], size[1]));
        }
        return out;
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

    /** The caption of an image: sidecar file, else the file name before the first '_'. */
    static String caption(Path image) {
        String stem = stem(image);
        String caption = null;
        for (String ext : List.of(".txt", ".caption")) {
            Path side = image.resolveSibling(stem + ext);
            if (Files.isRegularFile(side)) {
                caption = CaptionText.read(side);
            }
        }
        if (caption != null) {
            return caption;
        }
        int us = stem.indexOf('_');
        return us < 0 ? stem : stem.substring(0, us);
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
