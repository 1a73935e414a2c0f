package dev.dreamcluster.worker.example;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import javax.imageio.ImageIO;

/**
 * Whether an image shows what a shapes caption ("a red circle on a blue background") says, measured
 * from its pixels: every pixel is classified into the nearest of the synthetic dataset's seven named
 * colours (or none, when it is far from all of them); the <b>background</b> is the dominant colour of
 * the border (the outer eighth of each side) and must cover at least half of it; the <b>foreground</b>
 * is the dominant colour other than the background in the centre (the middle half of each side) and
 * must cover at least {@value #MIN_FOREGROUND_SHARE} of it. The <b>shape</b> is read from the largest
 * connected region of the foreground colour: the share of its bounding box it fills (a square about
 * 1, a circle pi/4 = 0.79, the dataset's triangles 0.5).
 *
 * <p>A panel matches when both colours are the caption's; {@link Result#shapeMatches} says the same
 * of the shape. Random-VAE noise fails (no colour covers half of its border); the dataset's own
 * images pass (SampleCheckTest). Sample sheets (gsSSSSS-III-prompt.png) hold one square panel per
 * cfg, left to right; each panel is checked on its own.
 */
public final class SampleCheck {
    /** The synthetic dataset's colours and names (worker.data.SyntheticDataset draws with these). */
    public static final List<String> COLOR_NAMES = List.of("red", "green", "blue", "yellow", "purple", "white", "black");
    static final int[][] RGB = {{220, 30, 30}, {30, 180, 40}, {30, 60, 220}, {240, 220, 30}, {150, 40, 180}, {255, 255, 255}, {0, 0, 0}};
    public static final List<String> SHAPES = List.of("circle", "square", "triangle");

    /** A pixel farther than this (RGB Euclidean) from every named colour is no colour. */
    static final double MAX_DISTANCE = 110;
    static final double MIN_BACKGROUND_SHARE = 0.5;
    static final double MIN_FOREGROUND_SHARE = 0.08;

    private static final Pattern CAPTION = Pattern.compile("\\ba (\\w+) (circle|square|triangle) on a (\\w+) background\\b");
    private static final Pattern SHEET = Pattern.compile("gs(\\d{5})-(\\d{3})-(.*)\\.png");
    private static final Pattern CFGS = Pattern.compile("cfgs: \\[([^\\]]*)\\]");

    private SampleCheck() {}

    /** What a caption asks for. */
    public record Caption(String foreground, String shape, String background) {
        /** Null when {@code text} does not say "a COLOUR SHAPE on a COLOUR background" with known colours. */
        public static Caption parse(String text) {
            Matcher m = CAPTION.matcher(text.toLowerCase(Locale.ROOT));
            if (!m.find() || !COLOR_NAMES.contains(m.group(1)) || !COLOR_NAMES.contains(m.group(3))) {
                return null;
            }
            return new Caption(m.group(1), m.group(2), m.group(3));
        }

        @Override
        public String toString() {
            return "a " + foreground + " " + shape + " on a " + background + " background";
        }
    }

    /**
     * What one image shows.
     *
     * @param background the border's dominant colour (null: none covers half of the border)
     * @param foreground the centre's dominant other colour (null: none covers enough of the centre)
     * @param shape circle, square or triangle from the fill ratio (null without a foreground)
     * @param fill the largest foreground region's share of its bounding box
     */
    public record Measure(String background, double backgroundShare, String foreground, double foregroundShare, String shape,
            double fill) {}

    /** One panel checked against its caption. */
    public record Result(String file, int panel, String label, Caption caption, Measure measure) {
        public boolean colorsMatch() {
            return caption.background.equals(measure.background) && caption.foreground.equals(measure.foreground);
        }

        public boolean shapeMatches() {
            return caption.shape.equals(measure.shape);
        }

        /** One line: file, panel, caption, what was seen, the verdict. */
        public String line() {
            Measure m = measure;
            return String.format(Locale.ROOT, "%s %s: %s | background %s (%.0f%% of border), foreground %s (%.0f%% of centre), shape %s"
                    + " (fill %.2f) | colours %s, shape %s", file, label, caption, name(m.background), 100 * m.backgroundShare,
                    name(m.foreground), 100 * m.foregroundShare, name(m.shape), m.fill, colorsMatch() ? "PASS" : "FAIL",
                    shapeMatches() ? "PASS" : "FAIL");
        }

        private static String name(String s) {
            return s == null ? "none" : s;
        }
    }

    /** The index into {@link #COLOR_NAMES} of the nearest named colour to {@code rgb}, or -1 when none is near. */
    static int classify(int rgb) {
        int r = (rgb >> 16) & 0xff;
        int g = (rgb >> 8) & 0xff;
        int b = rgb & 0xff;
        int best = -1;
        double bestD = MAX_DISTANCE * MAX_DISTANCE;
        for (int i = 0; i < RGB.length; i++) {
            double dr = r - RGB[i][0];
            double dg = g - RGB[i][1];
            double db = b - RGB[i][2];
            double d = dr * dr + dg * dg + db * db;
            if (d < bestD) {
                bestD = d;
                best = i;
            }
        }
        return best;
    }

    /** Measures the {@code w x h} panel of {@code img} whose left edge is at {@code x0}. */
    public static Measure measure(BufferedImage img, int x0, int w, int h) {
        int[][] cls = new int[h][w];
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                cls[y][x] = classify(img.getRGB(x0 + x, y));
            }
        }
        int bx = Math.max(1, w / 8);
        int by = Math.max(1, h / 8);
        int[] border = new int[COLOR_NAMES.size()];
        int borderPixels = 0;
        int[] centre = new int[COLOR_NAMES.size()];
        int centrePixels = 0;
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                if (x < bx || x >= w - bx || y < by || y >= h - by) {
                    borderPixels++;
                    if (cls[y][x] >= 0) {
                        border[cls[y][x]]++;
                    }
                }
                if (x >= w / 4 && x < w - w / 4 && y >= h / 4 && y < h - h / 4) {
                    centrePixels++;
                    if (cls[y][x] >= 0) {
                        centre[cls[y][x]]++;
                    }
                }
            }
        }
        int bg = argmax(border, -1);
        double bgShare = (double) border[bg] / borderPixels;
        String background = bgShare >= MIN_BACKGROUND_SHARE ? COLOR_NAMES.get(bg) : null;
        int fg = argmax(centre, bg);
        double fgShare = (double) centre[fg] / centrePixels;
        String foreground = fgShare >= MIN_FOREGROUND_SHARE ? COLOR_NAMES.get(fg) : null;
        double fill = foreground == null ? 0 : fill(cls, fg);
        String shape = foreground == null ? null : fill >= 0.9 ? "square" : fill >= 0.65 ? "circle" : "triangle";
        return new Measure(background, bgShare, foreground, fgShare, shape, fill);
    }

    private static int argmax(int[] counts, int skip) {
        int best = skip == 0 ? 1 : 0;
        for (int i = 0; i < counts.length; i++) {
            if (i != skip && counts[i] > counts[best]) {
                best = i;
            }
        }
        return best;
    }

    /** The largest 4-connected region of class {@code c}: its pixel count over its bounding box's area. */
    static double fill(int[][] cls, int c) {
        int h = cls.length;
        int w = cls[0].length;
        boolean[][] seen = new boolean[h][w];
        int bestCount = 0;
        double bestFill = 0;
        ArrayDeque<int[]> queue = new ArrayDeque<>();
        for (int y0 = 0; y0 < h; y0++) {
            for (int x0 = 0; x0 < w; x0++) {
                if (seen[y0][x0] || cls[y0][x0] != c) {
                    continue;
                }
                int count = 0;
                int minX = x0;
                int maxX = x0;
                int minY = y0;
                int maxY = y0;
                seen[y0][x0] = true;
                queue.add(new int[] {x0, y0});
                while (!queue.isEmpty()) {
                    int[] p = queue.poll();
                    count++;
                    minX = Math.min(minX, p[0]);
                    maxX = Math.max(maxX, p[0]);
                    minY = Math.min(minY, p[1]);
                    maxY = Math.max(maxY, p[1]);
                    int[][] next = {{p[0] + 1, p[1]}, {p[0] - 1, p[1]}, {p[0], p[1] + 1}, {p[0], p[1] - 1}};
                    for (int[] q : next) {
                        if (q[0] >= 0 && q[0] < w && q[1] >= 0 && q[1] < h && !seen[q[1]][q[0]] && cls[q[1]][q[0]] == c) {
                            seen[q[1]][q[0]] = true;
                            queue.add(q);
                        }
                    }
                }
                if (count > bestCount) {
                    bestCount = count;
                    bestFill = (double) count / ((maxX - minX + 1) * (maxY - minY + 1));
                }
            }
        }
        return bestFill;
    }

    /**
     * Checks every sample sheet in {@code dir} (only those of {@code step} when it is not null) whose
     * prompt is a shapes caption, one result per panel, in file-name order.
     */
    public static List<Result> checkSamples(Path dir, Integer step) {
        List<Result> out = new ArrayList<>();
        List<Path> files;
        try (Stream<Path> s = Files.list(dir)) {
            files = s.filter(p -> SHEET.matcher(p.getFileName().toString()).matches()).sorted().toList();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list " + dir, e);
        }
        for (Path f : files) {
            Matcher m = SHEET.matcher(f.getFileName().toString());
            m.matches();
            if (step != null && Integer.parseInt(m.group(1)) != step) {
                continue;
            }
            String prompt = m.group(3);
            List<String> cfgs = List.of();
            Path txt = f.resolveSibling(f.getFileName().toString().replaceFirst("\\.png$", ".txt"));
            try {
                if (Files.isRegularFile(txt)) {
                    String text = Files.readString(txt, StandardCharsets.UTF_8);
                    prompt = text.lines().findFirst().orElse(prompt);
                    Matcher c = CFGS.matcher(text);
                    if (c.find()) {
                        cfgs = List.of(c.group(1).split(",\\s*"));
                    }
                }
                Caption caption = Caption.parse(prompt);
                if (caption == null) {
                    continue;
                }
                BufferedImage img = ImageIO.read(f.toFile());
                if (img == null) {
                    throw new UncheckedIOException(new IOException("cannot decode " + f));
                }
                int side = img.getHeight();
                int panels = Math.max(1, img.getWidth() / side);
                String name = f.getFileName().toString().substring(0, "gs00000-000".length());
                for (int p = 0; p < panels; p++) {
                    String label = p < cfgs.size() ? "cfg " + cfgs.get(p) : "panel " + p;
                    out.add(new Result(name, p, label, caption, measure(img, p * side, side, side)));
                }
            } catch (IOException e) {
                throw new UncheckedIOException("cannot read " + f, e);
            }
        }
        return out;
    }

    /** One image checked as a whole against {@code caption} (a dataset image, say). */
    public static Result checkImage(Path png, Caption caption) {
        try {
            BufferedImage img = ImageIO.read(png.toFile());
            return new Result(png.getFileName().toString(), 0, "image", caption, measure(img, 0, img.getWidth(), img.getHeight()));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + png, e);
        }
    }
}
