package dev.dreamcluster.worker.train;

import dev.dreamcluster.config.TrainConfig;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.dreamcluster.device.CollectiveKind;
import dev.dreamcluster.device.ComputeDevice;
import dev.dreamcluster.device.Libtorch;
import dev.dreamcluster.nccl.Nccl;
import dev.dreamcluster.nccl.NcclCollective;
import dev.dreamcluster.worker.model.Tensors;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** Device addresses for NCCL (CPU: aliasing, no copy) and the GPU step (tagged gpu). */
class DeviceTest {
    /** The address DeviceAddress hands NCCL is the tensor's own memory (on the CPU it can be written to prove it). */
    @Test
    void addressAliasesTheTensorWithoutACopy() {
        Engine.getEngine("PyTorch");
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            NDArray flat = Tensors.of(m, new float[] {0, 1, 2, 3, 4, 5, 6, 7}, new Shape(8));
            ByteBuffer b = DeviceAddress.alias(flat, 3);
            assertEquals(4, b.capacity()); // one float: the 2 GiB direct-buffer limit never applies
            b.putFloat(0, 42f);
            assertArrayEquals(new float[] {0, 1, 2, 42, 4, 5, 6, 7}, flat.toFloatArray());
            assertEquals(12, DeviceAddress.of(flat, 3) - DeviceAddress.of(flat, 0));
        }
    }

    /**
     * gpu:0 with a one-rank NCCL communicator (the device ZeRO path: reduce-scatter and all-gather on
     * the GPU, the optimizer on the host), fp32 and fp16: the first step's loss matches the CPU's.
     */
    @Test
    @Tag("gpu")
    void gpuStepWithNcclMatchesTheCpu(@org.junit.jupiter.api.io.TempDir Path tmp) {
        String lib = ComputeReplica.pytorchSettings().get("PYTORCH_LIBRARY_PATH");
        assumeTrue(lib != null, "PYTORCH_LIBRARY_PATH (a CUDA libtorch: 2.7.1, or one with a JNI from bin/gpu-check jni) is not set");
        Libtorch.settings(Path.of(lib), "PYTORCH_LIBRARY_PATH").forEach(System::setProperty);
        assumeTrue(Nccl.unavailableReason() == null, "NCCL: " + Nccl.unavailableReason());
        var opt = TrainerTest.optimizer(TrainerTest.ADAMW);
        dev.dreamcluster.model.DiffusersFolder.writeRandom(tmp.resolve("model"), dev.dreamcluster.model.Presets.TINY, 0,
                dev.dreamcluster.safetensors.DType.F32);
        dev.dreamcluster.worker.data.SyntheticDataset.write(tmp.resolve("data"), 12, 48, 1);
        double[] first = new double[3];
        for (int k = 0; k < 3; k++) {
            ComputeConfig c = new ComputeConfig(k == 0 ? ComputeDevice.CPU : ComputeDevice.gpu(0), k == 2, Precision.FP16,
                    CollectiveKind.NCCL, true);
            try (NcclCollective nccl = k == 0 ? null : NcclCollective.connect(Nccl.newUniqueId(), 0, 1, 0, Duration.ofSeconds(60));
                    Trainer t = new Trainer(new TrainConfig(tmp.resolve("data"), tmp.resolve("model"), tmp.resolve("out" + k), 30, 3, 2, 1, 9,
                            64, 1.0, 0.1, 0, 0, 0, 0, 4, 0.02, 0, true, 100, false), opt, null, w -> { }, nccl, c)) {
                first[k] = t.trainStep().loss();
                for (int i = 0; i < 2; i++) {
                    assertTrue(Double.isFinite(t.trainStep().loss()));
                }
            }
        }
        assertEquals(first[0], first[1], 1e-4 * first[0], "gpu fp32 vs cpu");
        assertEquals(first[0], first[2], 1e-2 * first[0], "gpu fp16 vs cpu");
    }
}
