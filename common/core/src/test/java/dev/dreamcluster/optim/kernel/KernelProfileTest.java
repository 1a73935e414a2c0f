package dev.dreamcluster.optim.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import org.junit.jupiter.api.Test;

/** The bench's phase profile runs the kernels' own calls on any whole number of blocks and times every phase, the whole step and fp32 AdamW. */
class KernelProfileTest {
    @Test
    void everyPhaseShouldTakeTimeAndPartialBlocksShouldBeRefused() {
        assumeTrue(Simd.ENABLED, "the JVM was started without " + Simd.JVM_FLAG);
        int n = 256 * 64;
        float[] p = VectorScalarEquivalenceTest.params(n);
        float[] g = VectorScalarEquivalenceTest.grads(n, 1);
        for (KernelProfile.Phases ph : new KernelProfile.Phases[] {KernelProfile.adam8(p.clone(), g, 3), KernelProfile.lion8(p.clone(), g, 3)}) {
            assertTrue(ph.updateNs() > 0 && ph.quantizeNs() > 0, ph.toString());
            assertEquals(Simd.BYTE_PERMUTE, ph.dequantizeNs() > 0, ph.toString());
            assertTrue(ph.sumNs() >= ph.updateNs() + ph.quantizeNs(), ph.toString());
            assertTrue(ph.gathersNs() > 0 && ph.floorNs() >= ph.updateNs() + ph.gathersNs(), ph.toString());
            assertTrue(ph.wholeNs() > 0 && ph.adamwNs() > 0, ph.toString());
            assertEquals(3, ph.wholeOverFloor().length);
            assertEquals(3, ph.floorVsAdamw().length);
            for (int r = 0; r < 3; r++) {
                assertTrue(ph.wholeOverFloor()[r] > 0 && Double.isFinite(ph.wholeOverFloor()[r]), ph.toString());
                assertTrue(ph.floorVsAdamw()[r] > 0 && Double.isFinite(ph.floorVsAdamw()[r]), ph.toString());
            }
        }
        assertThrows(IllegalArgumentException.class, () -> KernelProfile.adam8(new float[300], new float[300], 3));
    }
}
