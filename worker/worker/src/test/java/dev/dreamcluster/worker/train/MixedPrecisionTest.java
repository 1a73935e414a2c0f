package dev.dreamcluster.worker.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.config.TrainConfig;
import dev.dreamcluster.device.CollectiveKind;
import dev.dreamcluster.device.ComputeDevice;
import dev.dreamcluster.freeze.Component;
import dev.dreamcluster.safetensors.DType;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * train.json amp on the CPU (fp16 compute with loss scaling, fp32 masters), the GradScaler, and the
 * device choice. bf16 cannot be tested: DJL 0.36's JNI aborts the JVM on any bfloat16 tensor.
 */
class MixedPrecisionTest {
    @TempDir
    static Path tmp;
    static Path model;
    static Path data;

    @BeforeAll
    static void inputs() {
        model = tmp.resolve("model");
        data = tmp.resolve("data");
        dev.dreamcluster.worker.fixture.TinyRun.writeInputs(tmp, 12);
    }

    static TrainConfig config(Path out, int steps) {
        return new TrainConfig(data, model, out, 30, steps, 2, 1, 9, 64, 1.0, 0.1, 0, 0, 0, 0, 6, 0.02, 0, true, 100, false);
    }

    static ComputeConfig cpu(boolean amp) {
        return new ComputeConfig(ComputeDevice.CPU, amp, Precision.FP16, CollectiveKind.AUTO, true);
    }

    /**
     * The acceptance check (with fp16 for bf16): reduced-precision compute over the same steps lands
     * within 5% of fp32's val_loss; the optimizer's masters stay fp32 and frozen tensors stay
     * bit-identical in the saved model.
     */
    @Test
    void fp16TrainsTheTinyModelLikeFp32() {
        int steps = 20;
        double[] start = new double[2];
        double[] end = new double[2];
        for (int k = 0; k < 2; k++) {
            Path out = tmp.resolve(k == 0 ? "fp32" : "fp16");
            try (Trainer t = new Trainer(config(out, steps), TrainerTest.optimizer(TrainerTest.ADAMW.replace("adamw8bit", "adamw")), null,
                    w -> { }, null, cpu(k == 1))) {
                start[k] = t.validate();
                int skipped = 0;
                for (int i = 0; i < steps; i++) {
                    dev.dreamcluster.io.StepMetrics r = t.trainStep();
                    assertTrue(Double.isFinite(r.loss()), "step " + r.step() + ": " + r);
                    skipped += Double.isFinite(r.gradNorm()) ? 0 : 1; // fp16: the GradScaler's overflow skip (then it backs off)
                }
                assertTrue(k == 1 ? skipped <= 2 : skipped == 0, skipped + " skipped steps");
                end[k] = t.validate();
                t.saveModel(out.resolve("final"), DType.F32);
            }
        }
        System.out.printf("val_loss fp32 %.5f -> %.5f, fp16 %.5f -> %.5f (%.2f%% apart)%n", start[0], end[0], start[1], end[1],
                100 * Math.abs(end[1] - end[0]) / end[0]);
        assertTrue(end[0] < start[0] && end[1] < start[1], "both learn");
        assertEquals(end[0], end[1], 0.05 * end[0], "fp16 val_loss within 5% of fp32");
        assertTrue(Math.abs(start[1] - start[0]) > 0, "fp16 really computed in fp16 (the starting val_loss differs by rounding)");
        String frozen = "text_model.encoder.layers.0.self_attn.q_proj.weight";
        assertArrayEquals(TrainerTest.weight(model, Component.TEXT_ENCODER, frozen),
                TrainerTest.weight(tmp.resolve("fp16/final"), Component.TEXT_ENCODER, frozen), "frozen: the fp32 master, not its fp16 cast");
        String trained = "conv_in.weight";
        float[] saved = TrainerTest.weight(tmp.resolve("fp16/final"), Component.UNET, trained);
        boolean notFp16 = false;
        for (float v : saved) {
            notFp16 |= (Float.floatToRawIntBits(v) & 0x1FFF) != 0; // fp16-representable values have 13 zero low mantissa bits
        }
        assertTrue(notFp16, "the saved trainable tensors are the fp32 masters");
    }

    @Test
    void gradScalerFollowsEveryDream2() {
        GradScaler s = new GradScaler(true);
        assertEquals(Math.pow(2, 17.5), s.scale());
        s.update(true, 1);
        assertEquals(Math.pow(2, 16.5), s.scale(), 1e-6);
        for (int i = 0; i < 25; i++) {
            s.update(false, 2 + i);
        }
        assertEquals(Math.pow(2, 17.5), s.scale(), 1e-6);
        s.update(false, 500);
        assertEquals(1.8, s.growthFactor());
        assertEquals(100, s.growthInterval());
        for (int step : new int[] {1000, 2000, 4000}) {
            s.update(false, step);
        }
        assertEquals(1.15, s.growthFactor());
        assertEquals(2000, s.growthInterval());
        GradScaler plain = new GradScaler(false);
        plain.update(false, 500);
        assertEquals(2.0, plain.growthFactor());
    }

    @Test
    void ampDefaultsAndDeviceErrors() throws Exception {
        Path json = tmp.resolve("train.json");
        Files.writeString(json, "{\"data_root\": \"d\", \"resume_ckpt\": \"m\"}");
        ComputeConfig c = ComputeConfig.of(dev.dreamcluster.config.ConfigFiles.read(json, null), Map.of());
        assertEquals(Precision.FP32, c.precision(ComputeDevice.CPU)); // amp defaults off on the CPU
        assertEquals(Precision.FP16, c.precision(ComputeDevice.gpu(0))); // and on (fp16, as EveryDream2) for a GPU
        Files.writeString(json, "{\"amp\": true, \"amp_dtype\": \"bf16\", \"device\": \"gpu:1\", \"collective\": \"nccl\"}");
        c = ComputeConfig.of(dev.dreamcluster.config.ConfigFiles.read(json, null), Map.of());
        assertEquals(ComputeDevice.gpu(1), c.device());
        assertEquals(CollectiveKind.NCCL, c.collective());
        ConfigError e = assertThrows(ConfigError.class, () -> ComputeConfig.of(dev.dreamcluster.config.ConfigFiles.read(json, null), Map.of()).precision(ComputeDevice.CPU));
        assertTrue(e.getMessage().startsWith("amp_dtype: \"bf16\" is not allowed (fp16: DJL 0.36's libtorch JNI cannot create bfloat16"),
                e.getMessage());
        Files.writeString(json, "{\"amp\": true, \"amp_dtype\": \"fp32\"}");
        assertThrows(ConfigError.class, () -> ComputeConfig.of(dev.dreamcluster.config.ConfigFiles.read(json, null), Map.of()));
        Files.writeString(json, "{\"disable_amp\": true}");
        assertEquals(Precision.FP32, ComputeConfig.of(dev.dreamcluster.config.ConfigFiles.read(json, null), Map.of()).precision(ComputeDevice.gpu(0)));
        Files.writeString(json, "{\"device\": \"tpu\"}");
        assertTrue(assertThrows(ConfigError.class, () -> ComputeConfig.of(dev.dreamcluster.config.ConfigFiles.read(json, null), Map.of())).getMessage()
                .startsWith(json + " at device: \"tpu\" is not allowed"));
    }

    /** On this CPU build `gpu:0` is refused before any tensor exists, with what to install. */
    @Test
    void gpuWithoutACudaLibtorchIsOneLine() {
        org.junit.jupiter.api.Assumptions.assumeTrue(ComputeReplica.pytorchSettings().get("PYTORCH_LIBRARY_PATH") == null,
                "a CUDA libtorch is configured here");
        ConfigError e = assertThrows(ConfigError.class, () -> ComputeReplica.of(cpu(false).withDevice(ComputeDevice.gpu(0))));
        assertTrue(e.getMessage().startsWith("--device: gpu:0 is not allowed (cpu here"), e.getMessage());
        assertTrue(e.getMessage().contains("pip install torch"));
        assertNull(ComputeReplica.of(cpu(false).withDevice(ComputeDevice.AUTO)).scaler); // auto: the CPU, no scaler
        assertEquals("cpu fp32", ComputeReplica.of(cpu(false).withDevice(ComputeDevice.AUTO)).toString());
    }
}
