package dev.dreamcluster.worker.data;

import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;
import javax.imageio.ImageIO;

/**
 * A small captioned dataset of coloured shapes for demos and tests ({@code make-dataset}): each PNG
 * shows one shape on a plain background, and its sidecar .txt says so ("a red circle on a blue
 * background"). A third of the images are landscape or portrait so several aspect buckets are used;
 * the {@code extra/} folder carries a multiply.txt of 1.5.
 */
public final class SyntheticDataset {
    static final List<String> SHAPES = List.of("circle", "square", "triangle");
    static final List<String> COLOR_NAMES = List.of("red", "green", "blue", "yellow", "purple", "white", "black");
    static final List<Color> COLORS = List.of(new Color(220, 30, 30), new Color(30, 180, 40), new Color(30, 60, 220),
            new Color(240, 220, 30), new Color(150, 40, 180), Color.WHITE, Color.BLACK);

    private SyntheticDataset() {}

    public static void write(Path dir, int count, int size, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        try {
            Files.createDirectories(dir.resolve("extra"));
            Files.writeString(dir.resolve("extra").resolve("multiply.txt"), "1.5\n");
            for (int i = 0; i < count; i++) {
                int shape = r.nextInt(SHAPES.size());
                int fg = r.nextInt(COLORS.size());
                int bg = (fg + 1 + r.nextInt(COLORS.size() - 1)) % COLORS.size();
                int w = size;
                int h = size;
                if (i % 3 == 1) {
                    w = size * 3 / 2;
                } else if (i % 3 == 2) {
                    h = size * 3 / 2;
                }
                BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
                Graphics2D g = img.createGraphics();
                g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
                g.setColor(COLORS.get(bg));
                g.fillRect(0, 0, w, h);
                g.setColor(COLORS.get(fg));
                int s = Math.min(w, h) / 2 + r.nextInt(Math.min(w, h) / 4);
                int x = r.nextInt(w - s + 1);
                int y = r.nextInt(h - s + 1);
                switch (SHAPES.get(shape)) {
                    case "circle" -> g.fillOval(x, y, s, s);
                    case "square" -> g.fillRect(x, y, s, s);
                    default -> g.fillPolygon(new int[] {x, x + s / 2, x + s}, new int[] {y + s, y, y + s}, 3);
                }
                g.dispose();
                Path folder = i % 5 == 4 ? dir.resolve("extra") : dir;
                String name = String.format("%s-%s-%04d", COLOR_NAMES.get(fg), SHAPES.get(shape), i);
                ImageIO.write(img, "png", folder.resolve(name + ".png").toFile());
                Files.writeString(folder.resolve(name + ".txt"),
                        "a " + COLOR_NAMES.get(fg) + " " + SHAPES.get(shape) + " on a " + COLOR_NAMES.get(bg) + " background",
                        StandardCharsets.UTF_8);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write dataset to " + dir, e);
        }
    }
}
