package dev.dreamcluster.worker.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dreamcluster.freeze.Component;
import dev.dreamcluster.model.DiffusersFolder;
import dev.dreamcluster.model.Presets;
import dev.dreamcluster.safetensors.DType;
import dev.dreamcluster.safetensors.SafetensorsFile;
import dev.dreamcluster.worker.data.SyntheticDataset;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * ZeRO-1 data parallelism between worker processes over the TCP ring: the tiny model, same seed and
 * global batch, 10 AdamW steps on 2 processes vs 1 process give the same parameters within 1e-5
 * (relative to max(1, |p|)), and frozen tensors stay bit-identical.
 */
class MultiProcessTrainingTest {
    static final int STEPS = 10;

    @Test
    void twoWorkersShouldTrainLikeOne(@TempDir Path tmp) throws Exception {
        Path model = tmp.resolve("model");
        DiffusersFolder.writeRandom(model, Presets.TINY, 0, DType.F32);
        SyntheticDataset.write(tmp.resolve("data"), 12, 48, 1);
        Files.writeString(tmp.resolve("optimizer.json"), "{\"base\": {\"optimizer\": \"adamw\", \"lr\": 1e-3},"
                + " \"text_encoder_freezing\": {\"freeze_embeddings\": true, \"freeze_front_n_layers\": 2}}");
        Files.writeString(tmp.resolve("train.json"), "{\"data_root\": \"data\", \"resume_ckpt\": \"model\", \"optimizer_config\":"
                + " \"optimizer.json\", \"resolution\": 64, \"batch_size\": 4, \"grad_accum\": 1, \"seed\": 3, \"clip_grad_norm\": 1.0,"
                + " \"cond_dropout\": 0.1}");

        Path one = tmp.resolve("one");
        assertEquals(0, launch(tmp.resolve("train.json"), 1, one, 11));
        Path two = tmp.resolve("two");
        assertEquals(0, launch(tmp.resolve("train.json"), 2, two, 12));

        double worst = 0;
        for (Component c : new Component[] {Component.UNET, Component.TEXT_ENCODER}) {
            SafetensorsFile a = SafetensorsFile.open(DiffusersFolder.weightsFile(one.resolve("final"), c));
            SafetensorsFile b = SafetensorsFile.open(DiffusersFolder.weightsFile(two.resolve("final"), c));
            SafetensorsFile init = SafetensorsFile.open(DiffusersFolder.weightsFile(model, c));
            for (String name : a.tensors().keySet()) {
                float[] x = a.readFloats(name);
                float[] y = b.readFloats(name);
                for (int i = 0; i < x.length; i++) {
                    worst = Math.max(worst, Math.abs(x[i] - y[i]) / Math.max(1, Math.abs(x[i])));
                }
                boolean frozen = c == Component.TEXT_ENCODER && (name.contains("embeddings") || name.contains("layers.0.")
                        || name.contains("layers.1."));
                if (frozen) {
                    assertArrayEquals(init.readFloats(name), y, "frozen " + name);
                }
            }
        }
        System.out.println("2 workers vs 1 worker after " + STEPS + " steps: worst relative parameter difference " + worst);
        assertTrue(worst <= 1e-5, "2 workers vs 1: worst relative difference " + worst);
    }

    /** Runs {@code world} RingTrainMain processes and returns the first non-zero exit code, or 0. */
    static int launch(Path trainJson, int world, Path out, long runId) throws Exception {
        List<String> peers = new ArrayList<>();
        for (int r = 0; r < world; r++) {
            try (ServerSocketChannel s = ServerSocketChannel.open().bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0))) {
                InetSocketAddress a = (InetSocketAddress) s.getLocalAddress();
                peers.add(a.getHostString() + ":" + a.getPort());
            }
        }
        List<Process> ps = new ArrayList<>();
        for (int r = 0; r < world; r++) {
            ps.add(new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Dai.djl.offline=true",
                    "-cp", System.getProperty("java.class.path"), RingTrainMain.class.getName(), trainJson.toString(),
                    Integer.toString(r), String.join(",", peers), Integer.toString(STEPS), out.toString(), Long.toString(runId))
                    .redirectErrorStream(true).redirectOutput(out.resolveSibling("rank" + r + "-" + out.getFileName() + ".log").toFile())
                    .start());
        }
        int code = 0;
        for (Process p : ps) {
            if (!p.waitFor(300, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                code = 124;
            } else if (p.exitValue() != 0 && code == 0) {
                code = p.exitValue();
            }
        }
        if (code != 0) {
            for (int r = 0; r < world; r++) {
                System.err.println(Files.readString(out.resolveSibling("rank" + r + "-" + out.getFileName() + ".log")));
            }
        }
        return code;
    }
}
