package dev.dreamcluster.cli;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** --device / --libtorch / --collective on a machine without a CUDA libtorch: one line, exit 2, before anything starts. */
class GpuFlagsTest {
    @Test
    void gpuWithoutCudaLibtorchIsAOneLineError(@TempDir Path tmp) throws Exception {
        assumeTrue(System.getenv("PYTORCH_LIBRARY_PATH") == null, "PYTORCH_LIBRARY_PATH is set here");
        Cli.run("worker", "--join", "127.0.0.1:1", "--insecure", "--device", "gpu:0")
                .assertUsageError("--device: gpu:0 is not allowed (cpu here", "pip install torch", "bin/gpu-check jni --libtorch");
        Cli.run("worker", "--join", "127.0.0.1:1", "--insecure", "--device", "gpu:0", "--libtorch", tmp.toString())
                .assertUsageError("--libtorch: " + tmp, "libtorch.so");
        Files.writeString(tmp.resolve("libtorch.so"), "");
        Cli.run("worker", "--join", "127.0.0.1:1", "--insecure", "--device", "gpu:1", "--libtorch", tmp.toString())
                .assertUsageError("CPU only");
        Cli.run("worker", "--join", "127.0.0.1:1", "--insecure", "--device", "tpu:0").assertUsageError("--device: \"tpu:0\" is not allowed");
        Cli.run("worker", "--join", "127.0.0.1:1", "--insecure", "--collective", "nccl")
                .assertUsageError("--collective: nccl is not allowed", "NCCL needs GPU workers");
        Cli.run("worker", "--join", "127.0.0.1:1", "--insecure", "--collective", "mpi").assertUsageError("--collective", "auto, ring or nccl");
        Files.writeString(tmp.resolve("t.json"), "{\"data_root\": \"d\", \"resume_ckpt\": \"m\"}");
        Cli.run("train", "--config", tmp.resolve("t.json").toString(), "--device", "gpu:0").assertUsageError("--device: gpu:0");
    }
}
