package dev.dreamcluster.optim.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.lang.management.ManagementFactory;
import org.junit.jupiter.api.Test;

/**
 * The vector kernels allocate nothing once C2 has compiled them. A kernel that allocates is one whose
 * vectors C2 compiled as objects: the same bits, 5-15x slower (Simd.TRAP_LIMIT_FLAG tells how that
 * happened to the 8-bit dequantize). The steps repeat until one round allocates nothing or two
 * minutes pass; a kernel that never stops allocating fails. The test JVM carries the flag
 * (surefire's argLine), as every JVM DreamCluster starts does.
 */
class KernelAllocationTest {
    @Test
    void theKernelsShouldAllocateNothingOnceCompiled() {
        assumeTrue(Simd.ENABLED, "the JVM was started without " + Simd.JVM_FLAG);
        assertEquals("1000", Simd.trapLimit(), "the test JVM runs without " + Simd.TRAP_LIMIT_FLAG);
        final int blocks = 64;
        final int n = 256 * blocks - 100; // a partial last block too
        float[] p = VectorScalarEquivalenceTest.params(n);
        float[] g = VectorScalarEquivalenceTest.grads(n, 1);
        byte[] c1 = new byte[n];
        byte[] c2 = new byte[n];
        byte[] c3 = new byte[n];
        float[] am1 = new float[blocks];
        float[] am2 = new float[blocks];
        float[] am3 = new float[blocks];
        float[] s1 = new float[256];
        float[] s2 = new float[256];
        float[] s3 = new float[256];
        int[] idx = new int[256];
        float[] m = new float[n];
        float[] v = new float[n];
        BnbScalars adam = BnbScalars.of(1e-4, 0.9, 0.999, 1e-8, 0.01, 3);
        BnbScalars lion = BnbScalars.of(1e-4, 0.9, 0.99, 0.0, 0.01, 3);
        AdamWKernel.Scalars fp32 = AdamWKernel.Scalars.of(1e-4, 0.9, 0.999, 1e-8, 0.01, 3);
        com.sun.management.ThreadMXBean mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        long thread = Thread.currentThread().getId();
        long deadline = System.nanoTime() + 120_000_000_000L;
        long allocated;
        int rounds = 0;
        do {
            long before = mx.getThreadAllocatedBytes(thread);
            for (int r = 0; r < 50; r++) {
                Blockwise8bitKernel.adam(p, 0, g, 0, c1, c2, 0, am1, am2, 0, n, 0, blocks, adam, s1, s2, s3, idx);
                Blockwise8bitKernel.lion(p, 0, g, 0, c3, 0, am3, 0, n, 0, blocks, lion, s1, s2, idx);
                AdamWKernel.step(p, 0, g, 0, m, v, 0, n, fp32);
            }
            allocated = mx.getThreadAllocatedBytes(thread) - before;
            rounds++;
        } while (allocated > 0 && System.nanoTime() < deadline);
        assertEquals(0, allocated, "bytes the kernels allocated in their last 50 steps, after " + rounds + " rounds: vectors compiled as objects");
    }
}
