package dev.dreamcluster.device;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dreamcluster.config.ConfigError;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** --device, --collective, the NCCL id transport, the padded NCCL layout (all CPU; the libtorch check is LibtorchTest). */
class DeviceChoiceTest {
    @Test
    void devicesParseAndResolve() {
        assertEquals(ComputeDevice.CPU, ComputeDevice.parse("cpu", "--device"));
        assertEquals(ComputeDevice.gpu(3), ComputeDevice.parse("gpu:3", "--device"));
        assertEquals(ComputeDevice.gpu(1), ComputeDevice.parse("cuda:1", "--device"));
        assertEquals("gpu:0", ComputeDevice.AUTO.resolve(2).toString());
        assertEquals("cpu", ComputeDevice.AUTO.resolve(0).toString());
        assertEquals("gpu:2", ComputeDevice.gpu(2).resolve(0).toString()); // concrete stays: the worker then refuses it
        ConfigError e = assertThrows(ConfigError.class, () -> ComputeDevice.parse("gpu", "train.json at device"));
        assertEquals("train.json at device: \"gpu\" is not allowed (cpu, gpu:N with N a CUDA device index >= 0, or auto)",
                e.getMessage());
        assertThrows(ConfigError.class, () -> ComputeDevice.parse("gpu:-1", "--device"));
    }

    @Test
    void collectiveAutoFallsBackToTheRingWithOneLine() {
        List<String> log = new ArrayList<>();
        assertEquals(CollectiveKind.RING, CollectiveKind.AUTO.resolve(Arrays.asList(null, "cpu worker"), log::add));
        assertEquals(List.of("collective auto: using the TCP ring (worker 1: cpu worker)"), log);
        assertEquals(CollectiveKind.NCCL, CollectiveKind.AUTO.resolve(Arrays.asList(null, null), log::add));
        assertEquals(CollectiveKind.RING, CollectiveKind.RING.resolve(Arrays.asList(null, null), log::add));
        assertEquals(1, log.size());
        ConfigError e = assertThrows(ConfigError.class,
                () -> CollectiveKind.NCCL.resolve(Arrays.asList("cpu worker", null), log::add));
        assertEquals("--collective: nccl is not allowed (ring or auto here: worker 0 cannot run NCCL (cpu worker))", e.getMessage());
        assertThrows(ConfigError.class, () -> CollectiveKind.parse("mpi", "--collective"));
        assertEquals(CollectiveKind.NCCL, CollectiveKind.parse("NCCL", "--collective"));
    }

    @Test
    void uniqueIdRoundTripsThroughTheBase64InThePlan() {
        byte[] id = new byte[128];
        new Random(7).nextBytes(id);
        String text = NcclUniqueId.encode(id);
        assertArrayEquals(id, NcclUniqueId.decode(text));
        assertTrue(NcclUniqueId.isBlank(new byte[128]));
        assertFalse(NcclUniqueId.isBlank(id));
        assertThrows(IllegalArgumentException.class, () -> NcclUniqueId.encode(new byte[64]));
        assertThrows(IllegalArgumentException.class, () -> NcclUniqueId.decode(text.substring(8)));
        assertThrows(IllegalArgumentException.class, () -> NcclUniqueId.decode("not base64!"));
    }

    @Test
    void paddedShardsGiveEqualAlignedCounts() {
        PaddedShards p = new PaddedShards(new int[] {0, 5, 8, 12}, 8);
        assertEquals(8, p.count());
        assertEquals(24, p.paddedLength());
        assertEquals(16, p.paddedOffset(2));
        PaddedShards big = new PaddedShards(new int[] {0, 1000, 1700});
        assertEquals(1024, big.count()); // 1000 rounded up to 64 floats
        assertEquals(64, new PaddedShards(new int[] {0, 0, 0}).count()); // empty shards still give NCCL a valid count
        assertThrows(IllegalArgumentException.class, () -> new PaddedShards(new int[] {0, 5, 3}));
    }

    /**
     * NCCL's reduce-scatter over padded buffers (rank r receives the sum of every rank's block r) and
     * all-gather, simulated element by element, must give what the ring's uneven segments give.
     */
    @Test
    void paddedReduceScatterAndAllGatherMatchTheUnevenSegments() {
        int[] bounds = {0, 700, 1300, 2100, 2101};
        int world = bounds.length - 1;
        int n = bounds[world];
        PaddedShards p = new PaddedShards(bounds);
        Random rnd = new Random(1);
        float[][] grads = new float[world][n];
        float[] sum = new float[n];
        for (int r = 0; r < world; r++) {
            for (int i = 0; i < n; i++) {
                grads[r][i] = rnd.nextFloat() - 0.5f;
                sum[i] += grads[r][i];
            }
        }
        float[][] padded = new float[world][(int) p.paddedLength()];
        for (int r = 0; r < world; r++) {
            Arrays.fill(padded[r], Float.NaN); // pad must overwrite every tail
            p.pad(grads[r], padded[r]);
        }
        for (int r = 0; r < world; r++) { // reduce-scatter: block r of every rank summed into rank r's block r
            float[] flat = new float[n];
            for (int k = 0; k < p.count(); k++) {
                float s = 0;
                for (int q = 0; q < world; q++) {
                    s += padded[q][(int) p.paddedOffset(r) + k];
                }
                assertFalse(Float.isNaN(s));
                padded[r][(int) p.paddedOffset(r) + k] = s;
            }
            p.unpadSegment(padded[r], flat, r);
            for (int i = bounds[r]; i < bounds[r + 1]; i++) {
                assertEquals(sum[i], flat[i], 1e-6f);
            }
        }
        float[] gathered = new float[(int) p.paddedLength()]; // all-gather: every rank's own block side by side
        for (int r = 0; r < world; r++) {
            System.arraycopy(padded[r], (int) p.paddedOffset(r), gathered, (int) p.paddedOffset(r), (int) p.count());
        }
        float[] flat = new float[n];
        p.unpad(gathered, flat);
        for (int i = 0; i < n; i++) {
            assertEquals(sum[i], flat[i], 1e-6f);
        }
    }
}
