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
 * Validation and samples over the whole cluster: in a 3-worker ring run every rank validates its share
 * of the images and draws its share of the prompts, rank 0 writes. At step 0 (the same weights on
 * every rank and in a 1-worker run) the val_loss equals the 1-worker one to 1e-6 relative and the
 * pre-training sample images equal it bit for bit; after training, the 3-rank gradient sums round
 * differently from the 1-rank ones (parameters agree within ~1e-5, MultiProcessTrainingTest), so
 * pixels may differ by one 8-bit level at most.
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
    void threeWorkersShouldValidateAndSampleExactlyAsOne(@TempDir Path tmp) throws Exception {
        Path trainJson = MultiProcessTrainingTest.setup(tmp);
        Files.writeString(tmp.resolve("prompts.json"), "{\"cfgs\": [5], \"num_inference_steps\": 4, \"generate_pretrain_samples\": true,"
                + " \"samples\": [{\"prompt\": \"a red circle on a blue background\", \"size\": [64, 64], \"seed\": 11},"
                + " {\"prompt\": \"a green square\", \"size\": [64, 64], \"seed\": 12}]}");
        String json = Files.readString(trainJson);
        Files.writeString(trainJson, json.substring(0, json.lastIndexOf('}'))
                + ", \"sample_prompts\": \"prompts.json\", \"sample_steps\": 2, \"val_count\": 5}");
        Path one = tmp.resolve("one");
        Path three = tmp.resolve("three");
        assertEquals(0, run(trainJson, 1, one, 31));
        assertEquals(0, run(trainJson, 3, three, 32));
        double v1 = valLoss(tmp.resolve("rank0-one.log"));
        double v3 = valLoss(tmp.resolve("rank0-three.log"));
        System.out.printf("step-0 val_loss: 1 worker %.9f, 3 workers %.9f (relative %.1e)%n", v1, v3, Math.abs(v3 - v1) / v1);
        assertTrue(Math.abs(v3 - v1) / v1 <= 1e-6, v1 + " against " + v3);
        try (var list = Files.list(three.resolve("samples"))) {
            assertEquals(12, list.count(), "2 prompts x 3 sample steps (0, 2, 4), each a sheet and its .txt, written once");
        }
        for (String prompt : List.of("000-a red circle on a blue background", "001-a green square")) {
            int[] d = difference(one.resolve("samples").resolve("gs00000-" + prompt + ".png"),
                    three.resolve("samples").resolve("gs00000-" + prompt + ".png"));
            assertEquals(0, d[0], "pre-training sample " + prompt + " drawn by another rank: bit for bit");
            for (String step : List.of("gs00002-", "gs00004-")) {
                d = difference(one.resolve("samples").resolve(step + prompt + ".png"), three.resolve("samples").resolve(step + prompt + ".png"));
                System.out.printf("samples %s%s, 3 workers vs 1: worst channel difference %d/255, %d channel values differ%n", step, prompt,
                        d[0], d[1]);
                assertTrue(d[0] <= 1, "worst channel difference " + d[0]);
            }
        }
    }

    /** The starting val_loss rank 0 printed. */
    static double valLoss(Path log) throws Exception {
        for (String line : Files.readAllLines(log)) {
            if (line.startsWith("step 0 val_loss ")) {
                return Double.parseDouble(line.substring("step 0 val_loss ".length()).trim());
            }
        }
        throw new AssertionError("no step 0 val_loss in " + log + ":\n" + Files.readString(log));
    }

    /** {worst channel difference, channel values that differ} of two 64 x 64 images. */
    static int[] difference(Path a, Path b) throws Exception {
        BufferedImage x = ImageIO.read(a.toFile());
        BufferedImage y = ImageIO.read(b.toFile());
        int worst = 0;
        int differing = 0;
        for (int j = 0; j < 64; j++) {
            for (int i = 0; i < 64; i++) {
                int p = x.getRGB(i, j);
                int q = y.getRGB(i, j);
                for (int s = 0; s < 24; s += 8) {
                    int d = Math.abs(((p >> s) & 0xff) - ((q >> s) & 0xff));
                    worst = Math.max(worst, d);
                    differing += d > 0 ? 1 : 0;
                }
            }
        }
        return new int[] {worst, differing};
    }
}
