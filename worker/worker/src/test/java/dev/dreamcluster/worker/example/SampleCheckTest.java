package dev.dreamcluster.worker.example;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dreamcluster.worker.data.SyntheticDataset;
import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The colour check of shapes samples: the dataset's own images pass it, noise and swapped colours fail it. Pure Java, well under a second. */
class SampleCheckTest {
    @Test
    void captionsShouldParse() {
        assertEquals(new SampleCheck.Caption("red", "circle", "blue"), SampleCheck.Caption.parse("a red circle on a blue background"));
        assertEquals(new SampleCheck.Caption("yellow", "square", "black"),
                SampleCheck.Caption.parse("A yellow square on a black background, photo"));
        assertNull(SampleCheck.Caption.parse("a cat on a mat"));
        assertNull(SampleCheck.Caption.parse("a pink circle on a blue background"));
    }

    /** Every square image make-dataset draws (90 of them) shows its caption's colours and shape. */
    @Test
    void theDatasetsImagesShouldPass(@TempDir Path tmp) throws Exception {
        SyntheticDataset.write(tmp, 270, 64, 5);
        List<Path> square;
        try (Stream<Path> s = Files.walk(tmp)) {
            square = s.filter(p -> p.toString().endsWith(".png"))
                    .filter(p -> Integer.parseInt(p.getFileName().toString().replaceAll(".*-(\\d+)\\.png", "$1")) % 3 == 0).toList();
        }
        assertEquals(90, square.size());
        for (Path p : square) {
            SampleCheck.Caption c = SampleCheck.Caption.parse(Files.readString(Path.of(p.toString().replace(".png", ".txt"))));
            SampleCheck.Result r = SampleCheck.checkImage(p, c);
            assertTrue(r.colorsMatch() && r.shapeMatches(), r.line());
        }
    }

    @Test
    void noiseAndWrongColoursShouldFail(@TempDir Path tmp) throws Exception {
        // one sheet of two panels: the caption's picture, then the same shape with the colours swapped
        BufferedImage sheet = new BufferedImage(128, 64, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = sheet.createGraphics();
        draw(g, 0, new Color(30, 60, 220), new Color(220, 30, 30));
        draw(g, 64, new Color(220, 30, 30), new Color(30, 60, 220));
        g.dispose();
        ImageIO.write(sheet, "png", tmp.resolve("gs00300-000-a red circle on a blue background.png").toFile());
        Files.writeString(tmp.resolve("gs00300-000-a red circle on a blue background.txt"),
                "a red circle on a blue background\n seed: 555\n cfgs: [7.0, 1.01]\n scheduler: ddim 20 steps\n");
        // what a random VAE decodes: blue and purple speckle
        BufferedImage noise = new BufferedImage(128, 64, BufferedImage.TYPE_INT_RGB);
        SplittableRandom r = new SplittableRandom(1);
        for (int y = 0; y < 64; y++) {
            for (int x = 0; x < 128; x++) {
                noise.setRGB(x, y, new Color(60 + r.nextInt(120), 20 + r.nextInt(100), 150 + r.nextInt(100)).getRGB());
            }
        }
        ImageIO.write(noise, "png", tmp.resolve("gs00300-001-a yellow square on a black background.png").toFile());
        ImageIO.write(noise, "png", tmp.resolve("gs00100-000-a red circle on a blue background.png").toFile());
        List<SampleCheck.Result> all = SampleCheck.checkSamples(tmp, null);
        assertEquals(6, all.size());
        List<SampleCheck.Result> step300 = SampleCheck.checkSamples(tmp, 300);
        assertEquals(4, step300.size());
        assertEquals("cfg 7.0", step300.get(0).label());
        assertTrue(step300.get(0).colorsMatch() && step300.get(0).shapeMatches(), step300.get(0).line());
        assertFalse(step300.get(1).colorsMatch(), step300.get(1).line());
        assertEquals("blue", step300.get(1).measure().foreground(), step300.get(1).line());
        for (SampleCheck.Result n : step300.subList(2, 4)) {
            assertEquals("panel " + n.panel(), n.label());
            assertFalse(n.colorsMatch(), n.line());
        }
    }

    private static void draw(Graphics2D g, int x0, Color bg, Color fg) {
        g.setColor(bg);
        g.fillRect(x0, 0, 64, 64);
        g.setColor(fg);
        g.fillOval(x0 + 14, 12, 38, 38);
    }
}
