package dev.dreamcluster.worker.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.dreamcluster.device.ComputeDevice;
import java.util.List;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** bin/gpu-check's DJL half: its CPU path here, its GPU modes tagged gpu (they need CUDA and a JNI for the libtorch). */
class GpuSmokeTest {
    /** The tiny model's steps on the CPU through the mode the GPU check runs (the CPU half of tiny-gpu-vs-cpu). */
    @Test
    void tinyStepsRunOnTheCpu() throws Exception {
        assertTrue(GpuSmoke.tiny(List.of(ComputeDevice.CPU), 2));
    }

    /** DJL reads the environment before system properties; so does the worker (a property counts only without a variable). */
    @Test
    void pytorchSettingsFollowDjlsOrder() {
        String k = "PYTORCH_FLAVOR";
        String before = System.getProperty(k);
        System.setProperty(k, "cu999-test");
        try {
            String expected = System.getenv(k) != null ? System.getenv(k) : "cu999-test";
            assertEquals(expected, ComputeReplica.pytorchSettings().get(k));
        } finally {
            if (before == null) {
                System.clearProperty(k);
            } else {
                System.setProperty(k, before);
            }
        }
    }

    /** The same 5 fp32 AdamW steps on the CPU and on gpu:0: the weight updates agree within GpuSmoke's stated bound. */
    @Test
    @Tag("gpu")
    void tinyGpuStepsMatchTheCpu() throws Exception {
        assumeTrue(ComputeReplica.pytorchSettings().get("PYTORCH_LIBRARY_PATH") != null, "PYTORCH_LIBRARY_PATH (a CUDA libtorch) is not set");
        assertTrue(GpuSmoke.tiny(List.of(ComputeDevice.CPU, ComputeDevice.gpu(0)), 5));
    }

    /** fp16 amp through the trainer and bf16 through DJL (with the patched JNI) on gpu:0: the losses fall. */
    @Test
    @Tag("gpu")
    void fp16AndBf16LossesFallOnTheGpu() throws Exception {
        assumeTrue(ComputeReplica.pytorchSettings().get("PYTORCH_LIBRARY_PATH") != null, "PYTORCH_LIBRARY_PATH (a CUDA libtorch) is not set");
        assertTrue(GpuSmoke.amp(ComputeDevice.gpu(0), 20));
    }
}
