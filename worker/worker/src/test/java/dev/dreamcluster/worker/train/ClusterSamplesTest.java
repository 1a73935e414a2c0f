package dev.dreamcluster.worker.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Samples in a 2-worker ring run: only rank 0 draws them, and they match a 1-worker run's at the
 * same step and seed. The 2-rank gradient sum rounds differently from the 1-rank one (parameters
 * agree within ~5e-6, MultiProcessTrainingTest), so pixels may differ by one 8-bit level at most.
 */
class ClusterSamplesTest {
    /** 4 steps on {@code world} ring processes; the exit code (124: not done within 20 minutes). */
    static int run(Path trainJson, int world, Path out, long runId) throws Exception {
        List<Process> ps = MultiProcessTrainingTest.start(trainJson, world, out, runId, 4, 0);
        int code = 0;
        for (Process p : ps) {
            if (!p.waitFor(20, java.util.concurrent.TimeUnit.MINUTES)) {
                p.destroyForcibly();
                code = 124;
            } else if (p.exitValue() != 0 && code == 0) {
                code = p.exitValue();
            }
        }
        return code;
    }

    @Test
    void rankZeroAloneSamplesAndTheImagesMatchOneWorker(@TempDir Path tmp) throws Exception {
        Path trainJson = MultiProcessTrainingTest.setup(tmp);
        Files.writeString(tmp.resolve("prompts.json"), "{\"cfgs\": [5], \"num_inference_steps\": 4, \"samples\": ["
                + "{\"prompt\": \"a red circle on a blue background\", \"size\": [64, 64], \"seed\": 11}]}");
        String json = Files.readString(trainJson);
        Files.writeString(trainJson, json.substring(0, json.lastIndexOf('}'))
                + ", \"sample_prompts\": \"prompts.json\", \"sample_steps\": 2}");
        Path one = tmp.resolve("one");
        Path two = tmp.resolve("two");
        assertEquals(0, run(trainJson, 1, one, 31));
        assertEquals(0, run(trainJson, 2, two, 32));
        // rank 1's RunOutputs is inactive (SamplingTest: it never even reads the prompts); one set of files
        try (var list = Files.list(two.resolve("samples"))) {
            assertEquals(4, list.count(), "2 sample sheets and their .txt");
        }
        int worst = 0;
        long differing = 0;
        for (String name : List.of("gs00002-000-a red circle on a blue background.png", "gs00004-000-a red circle on a blue background.png")) {
            BufferedImage a = ImageIO.read(one.resolve("samples").resolve(name).toFile());
            BufferedImage b = ImageIO.read(two.resolve("samples").resolve(name).toFile());
            for (int y = 0; y < 64; y++) {
                for (int x = 0; x < 64; x++) {
                    int p = a.getRGB(x, y);
                    int q = b.getRGB(x, y);
                    for (int s = 0; s < 24; s += 8) {
                        int d = Math.abs(((p >> s) & 0xff) - ((q >> s) & 0xff));
                        worst = Math.max(worst, d);
                        differing += d > 0 ? 1 : 0;
                    }
                }
            }
        }
        System.out.printf("samples, 2 workers vs 1: worst channel difference %d/255, %d of %d channel values differ%n", worst, differing,
                2 * 64 * 64 * 3);
        assertTrue(worst <= 1, "worst channel difference " + worst);
    }
}
