package dev.dreamcluster.worker.train.grad.device;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import dev.dreamcluster.config.OptimizerName;
import dev.dreamcluster.optim.Optimizer;
import dev.dreamcluster.optim.OptimizerHyper;
import dev.dreamcluster.optim.TensorSlice;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Chunked host <-> device copies at long offsets, and the optimizer on a shard past 2 GiB. */
class DeviceCopyTest {
    static NDManager root;

    @BeforeAll
    static void engine() {
        Engine.getEngine("PyTorch");
        root = NDManager.newBaseManager(Device.cpu());
    }

    @AfterAll
    static void close() {
        root.close();
    }

    @Test
    void floatsShouldRoundTripInSmallChunks() {
        SplittableRandom rnd = new SplittableRandom(1);
        float[] src = new float[1001];
        for (int i = 0; i < src.length; i++) {
            src[i] = (float) rnd.nextGaussian();
        }
        for (long chunk : new long[] {1, 4, 12, 13, 4000, 4004, DeviceCopy.MAX_CHUNK_BYTES}) {
            try (NDManager m = root.newSubManager()) {
                NDArray t = DeviceCopy.zeros(m, 1200, DataType.FLOAT32);
                DeviceCopy.upload(src, 3, t, 150, 990, chunk); // src[3 .. 993) -> t[150 .. 1140)
                float[] all = new float[1200];
                DeviceCopy.download(t, 0, all, 0, 1200, chunk);
                float[] want = new float[1200];
                System.arraycopy(src, 3, want, 150, 990);
                Bits.assertFloats(want, all, "chunk " + chunk);
                float[] part = new float[20];
                DeviceCopy.download(t, 1130, part, 5, 15, chunk); // t[1130 .. 1145) -> part[5 .. 20)
                Bits.assertFloats(want, 1130, part, 5, 15, "partial read, chunk " + chunk);
            }
        }
    }

    @Test
    void bytesShouldRoundTripInSmallChunks() {
        byte[] src = new byte[777];
        for (int i = 0; i < src.length; i++) {
            src[i] = (byte) (i * 37);
        }
        for (long chunk : new long[] {1, 7, 256, 1000}) {
            try (NDManager m = root.newSubManager()) {
                NDArray t = DeviceCopy.zeros(m, 800, DataType.UINT8);
                DeviceCopy.upload(src, 0, t, 20, 777, chunk);
                byte[] back = new byte[800];
                DeviceCopy.download(t, 0, back, 0, 800, chunk);
                byte[] want = new byte[800];
                System.arraycopy(src, 0, want, 20, 777);
                Bits.assertBytes(want, back, "chunk " + chunk);
            }
        }
    }

    @Test
    void badRangesShouldBeRejected() {
        try (NDManager m = root.newSubManager()) {
            NDArray t = DeviceCopy.zeros(m, 10, DataType.FLOAT32);
            float[] h = new float[10];
            DeviceOptimizerTest.assertMessage(() -> DeviceCopy.upload(h, 0, t, 5, 6), "[5, 11)");
            DeviceOptimizerTest.assertMessage(() -> DeviceCopy.download(t, -1, h, 0, 2), "[-1, 1)");
            DeviceOptimizerTest.assertMessage(() -> DeviceCopy.download(t, 0, h, 9, 2), "[9, 11)");
            DeviceOptimizerTest.assertMessage(() -> DeviceCopy.upload(h, 0, t, 0, 1, 0), "chunkBytes");
            DeviceOptimizerTest.assertMessage(() -> DeviceCopy.upload(h, 0, t, 0, 1, DeviceCopy.MAX_CHUNK_BYTES + 1),
                    "chunkBytes");
            NDArray b = DeviceCopy.zeros(m, 10, DataType.UINT8);
            DeviceOptimizerTest.assertMessage(() -> DeviceCopy.upload(h, 0, b, 0, 1), "uint8");
            DeviceOptimizerTest.assertMessage(() -> DeviceCopy.zeros(m, -1, DataType.FLOAT32), "-1");
            assertThrows(IllegalArgumentException.class, () -> DeviceCopy.download(t, 0, new byte[1], 0, 1, 1));
        }
    }

    /**
     * A buffer of 2 GiB + 128 KiB: copies across the 2 GiB byte offset and at the buffer's end, and a
     * device optimizer whose shard straddles the 2 GiB mark in both the parameters and the gradients
     * (two disjoint views of the buffer), equal to the Java optimizer, its neighbours untouched. The
     * buffer is allocated uninitialised, so only the pages the test touches are ever committed.
     */
    @Test
    void shouldWorkPastTwoGibibytes() throws IOException {
        assumeTrue(availableBytes() > (3L << 30), "needs room for a 2 GiB allocation");
        long n = (1L << 29) + (1L << 15); // fp32 elements: 2 GiB + 128 KiB
        long k = 1L << 14; // the gradients view starts 64 KiB later
        long from = (1L << 29) - 3000; // the shard starts 12000 bytes before the 2 GiB mark
        List<TensorSlice> slices = List.of(new TensorSlice("a", 9000, 0, 9000), new TensorSlice("b", 300, 0, 300));
        int len = 9300;
        OptimizerHyper h = new OptimizerHyper(OptimizerName.ADAMW8BIT, 0.9, 0.999, 1e-8, 0.01);
        SplittableRandom rnd = new SplittableRandom(2);
        float[] p = new float[len + 2]; // with one neighbour on each side
        float[] g = new float[len];
        for (int i = 0; i < p.length; i++) {
            p[i] = (float) rnd.nextGaussian();
        }
        for (int i = 0; i < len; i++) {
            g[i] = (float) (rnd.nextGaussian() * 1e-3);
        }
        float[] shard = java.util.Arrays.copyOfRange(p, 1, len + 1);
        try (NDManager m = root.newSubManager(); Optimizer java = Optimizer.create(h, slices, 1);
                DeviceOptimizer dev = DeviceOptimizer.create(h, slices, m)) {
            NDArray big = m.create(new ai.djl.ndarray.types.Shape(n), DataType.FLOAT32); // uninitialised
            assertEquals(n, big.size());
            NDArray params = DeviceOptimizer.range(big, 0, n - k);
            NDArray grads = DeviceOptimizer.range(big, k, n);
            DeviceCopy.upload(p, 0, params, from - 1, len + 2, 4096); // 1 Ki floats per piece
            DeviceCopy.upload(g, 0, grads, from, len, 4096);
            float[] edge = {1f, 2f, 3f};
            DeviceCopy.upload(edge, 0, big, n - 3, 3, 8); // the very end
            for (int t = 0; t < 3; t++) {
                java.step(shard, g, 1e-3);
                dev.step(params, grads, from, 1e-3);
            }
            float[] back = new float[len + 2];
            DeviceCopy.download(params, from - 1, back, 0, len + 2, 1 << 12);
            assertEquals(p[0], back[0], "element before the shard");
            assertEquals(p[len + 1], back[len + 1], "element after the shard");
            Bits.assertFloats(shard, 0, back, 1, len, "shard past 2 GiB");
            float[] gBack = new float[len];
            DeviceCopy.download(grads, from, gBack, 0, len);
            Bits.assertFloats(g, gBack, "gradients are read only");
            float[] end = new float[3];
            DeviceCopy.download(big, n - 3, end, 0, 3);
            Bits.assertFloats(edge, end, "end of the buffer");
            DeviceOptimizerTest.assertStatesEqual(java.state(), dev.state(), "past 2 GiB");
        }
    }

    static long availableBytes() throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/meminfo"))) {
            if (line.startsWith("MemAvailable:")) {
                return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
            }
        }
        return 0;
    }
}
