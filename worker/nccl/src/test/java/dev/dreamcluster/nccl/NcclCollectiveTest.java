package dev.dreamcluster.nccl;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.dreamcluster.collective.CollectiveException;
import java.time.Duration;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

class NcclCollectiveTest {
    /** On a machine without CUDA the presets' UnsatisfiedLinkError becomes one line naming what is missing. */
    @Test
    void withoutCudaLoadingFailsWithOneLineNotACrash() {
        String why = Nccl.unavailableReason();
        assumeTrue(why != null, "CUDA and NCCL load here: the no-CUDA path cannot be checked");
        assertFalse(why.contains("\n"), why);
        assertTrue(why.contains("libnccl.so.2") || why.contains("CUDA"), why);
        assertEquals(why, Nccl.unavailableReason()); // probed once, stable afterwards (no NoClassDefFoundError)
        CollectiveException e = assertThrows(CollectiveException.class,
                () -> NcclCollective.connect(new byte[128], 0, 1, 0, Duration.ofSeconds(1)));
        assertTrue(e.getMessage().startsWith("rank 0: "), e.getMessage());
    }

    @Test
    void versionCodesRead() {
        assertEquals("2.28.9", Nccl.versionString(22809));
        assertEquals("2.27.3", Nccl.versionString(22703));
        assertEquals("2.8.4", Nccl.versionString(2804));
    }

    /** One rank on GPU 0: the JNI plumbing, the config, host staging and the device operations. */
    @Test
    @Tag("gpu")
    void oneRankCommunicatorOnGpu() {
        assumeTrue(Nccl.unavailableReason() == null, "no CUDA/NCCL here: " + Nccl.unavailableReason());
        byte[] id = Nccl.newUniqueId();
        assertNotNull(id);
        try (NcclCollective c = NcclCollective.connect(id, 0, 1, 0, Duration.ofSeconds(60))) {
            float[] v = {1, 2, 3, 4, 5};
            c.allReduce(v, 5);
            assertArrayEquals(new float[] {1, 2, 3, 4, 5}, v);
            float[] g = new float[300];
            for (int i = 0; i < g.length; i++) {
                g[i] = i;
            }
            float[] want = g.clone();
            c.reduceScatter(g, new int[] {0, 300});
            assertArrayEquals(want, g);
            c.allGather(g, new int[] {0, 300});
            assertArrayEquals(want, g);
            c.barrier();
        }
    }
}
