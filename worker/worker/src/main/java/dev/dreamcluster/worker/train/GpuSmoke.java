package dev.dreamcluster.worker.train;

import dev.dreamcluster.config.TrainConfig;

import dev.dreamcluster.config.CliFlags;
import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.config.ConfigResolver;
import dev.dreamcluster.config.Json;
import dev.dreamcluster.device.CollectiveKind;
import dev.dreamcluster.device.ComputeDevice;
import dev.dreamcluster.device.Libtorch;
import dev.dreamcluster.model.DiffusersFolder;
import dev.dreamcluster.model.Presets;
import dev.dreamcluster.safetensors.DType;
import dev.dreamcluster.worker.data.SyntheticDataset;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/**
 * The DJL half of {@code bin/gpu-check}: the tiny model's training step (text encoder, UNet forward,
 * MSE, backward, the Java optimizer) on the CPU and on CUDA device 0, fp32 and fp16, with the first
 * losses side by side. Needs the CUDA libtorch 2.7.1+cu128 named by PYTORCH_LIBRARY_PATH; without
 * it it prints the exact reason and exits 2.
 */
public final class GpuSmoke {
    private GpuSmoke() {}

    public static void main(String[] args) throws Exception {
        String lib = ComputeReplica.pytorchSettings().get("PYTORCH_LIBRARY_PATH");
        try {
            if (lib == null) {
                throw new ConfigError("PYTORCH_LIBRARY_PATH is not set (" + Libtorch.INSTALL + ")");
            }
            Libtorch.settings(Path.of(lib), "PYTORCH_LIBRARY_PATH").forEach(System::setProperty);
        } catch (ConfigError e) {
            System.out.println("DJL CUDA check not run: " + e.getMessage());
            System.exit(2);
        }
        Path tmp = Files.createTempDirectory("dreamcluster-gpu-smoke");
        Path model = tmp.resolve("model");
        Path data = tmp.resolve("data");
        DiffusersFolder.writeRandom(model, Presets.TINY, 0, DType.F32);
        SyntheticDataset.write(data, 8, 64, 1);
        var opt = ConfigResolver.resolve(null, CliFlags.NONE, new ConfigResolver.Input(Json.MAPPER.readTree(
                "{\"base\": {\"optimizer\": \"adamw8bit\", \"lr\": 1e-3}}"), "smoke"), 4);
        TrainConfig cfg = new TrainConfig(data, model, tmp.resolve("out"), 30, 3, 4, 1, 9, 64, 1.0, 0.0, 0, 0, 0, 0, 4, 0.02, 0, true,
                100, false);
        String[][] runs = {{"cpu", "false"}, {"gpu:0", "false"}, {"gpu:0", "true"}};
        for (String[] r : runs) {
            ComputeConfig c = new ComputeConfig(ComputeDevice.parse(r[0], "device"), Boolean.parseBoolean(r[1]), Precision.FP16,
                    CollectiveKind.RING, true);
            long t0 = System.nanoTime();
            try (Trainer t = new Trainer(cfg, opt, null, w -> { }, null, c)) {
                double setup = (System.nanoTime() - t0) / 1e9;
                StringBuilder line = new StringBuilder(String.format(Locale.ROOT, "DJL %-5s amp=%-5s setup %.2f s", r[0], r[1], setup));
                for (int i = 0; i < 3; i++) {
                    long s = System.nanoTime();
                    dev.dreamcluster.io.StepMetrics res = t.trainStep();
                    line.append(String.format(Locale.ROOT, " | step %d loss %.6f grad_norm %.4f %.1f ms", res.step(), res.loss(),
                            res.gradNorm(), (System.nanoTime() - s) / 1e6));
                }
                line.append(String.format(Locale.ROOT, " | val_loss %.6f", t.validate()));
                System.out.println(line);
            }
        }
        dev.dreamcluster.io.AtomicFiles.deleteRecursively(tmp);
    }
}
