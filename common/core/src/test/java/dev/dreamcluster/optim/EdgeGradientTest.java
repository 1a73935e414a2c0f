package dev.dreamcluster.optim;

import static dev.dreamcluster.optim.Bits.assertBitsEqual;
import static dev.dreamcluster.optim.Bits.assertBytesEqual;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.dreamcluster.config.OptimizerName;
import dev.dreamcluster.optim.kernel.BnbScalars;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * 8-bit optimizers on inputs the shipped vectors do not cover: a partial last block, magnitudes
 * spanning 10 decades inside a block, and zero, tiny, subnormal, huge, NaN and infinite gradients.
 * The oracle is {@link ScalarReference}, a plain transcription with a brute-force quantizer.
 */
class EdgeGradientTest {
    static final int N = 4096 + 3 * 256 + 37; // 20 blocks, the last one partial (37 of 256 lanes)
    static final int STEPS = 8;
    static final double LR = 1e-3;

    /** Step t's gradients: mixed decades everywhere, plus one kind of edge value per step in block 3. */
    static float[] grads(int t, SplittableRandom rnd) {
        float[] g = new float[N];
        for (int i = 0; i < N; i++) {
            g[i] = (float) (rnd.nextGaussian() * Math.pow(10, -rnd.nextInt(10)));
        }
        float[] edge = {0f, 1e-30f, 1e-42f, 1e30f, 3e38f, Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY};
        for (int i = 3 * 256; i < 3 * 256 + 40; i++) {
            g[i] = edge[t % edge.length] * (i % 2 == 0 ? 1 : -1);
        }
        for (int i = 5 * 256; i < 6 * 256; i++) {
            g[i] = 0f; // a whole block of zeros from step 0 on
        }
        g[N - 1] = t == 2 ? Float.NaN : g[N - 1]; // a non-finite lane in the partial block
        if (t == 4) {
            // every real lane of the partial block reset: only the padding lanes (m code 128) set absmax
            for (int i = 19 * 256; i < N; i++) {
                g[i] = Float.NaN;
            }
        }
        return g;
    }

    static float[] params(SplittableRandom rnd) {
        float[] p = new float[N];
        for (int i = 0; i < N; i++) {
            p[i] = (float) rnd.nextGaussian();
        }
        return p;
    }

    @Test
    void adamW8bitShouldMatchScalarReferenceOnEdgeGradients() {
        SplittableRandom rnd = new SplittableRandom(11);
        float[] p = params(rnd);
        float[] ref = p.clone();
        byte[] c1 = new byte[N];
        byte[] c2 = new byte[N];
        float[] a1 = new float[20];
        float[] a2 = new float[20];
        OptimizerHyper h = new OptimizerHyper(OptimizerName.ADAMW8BIT, 0.9, 0.999, 1e-8, 0.01);
        try (Optimizer opt = Optimizer.create(h, List.of(TensorSlice.whole("t", N)), 3)) {
            for (int t = 0; t < STEPS; t++) {
                float[] g = grads(t, rnd);
                opt.step(p, g, LR);
                ScalarReference.adam8bit(ref, g, c1, c2, a1, a2, BnbScalars.of(LR, 0.9, 0.999, 1e-8, 0.01, t + 1));
                assertBitsEqual(ref, p, "params after step " + (t + 1));
                TensorState s = opt.state().tensors().get(0);
                assertBytesEqual(c1, s.c1, "m codes step " + (t + 1));
                assertBytesEqual(c2, s.c2, "v codes step " + (t + 1));
                assertBitsEqual(a1, s.absmax1, "absmax1 step " + (t + 1));
                assertBitsEqual(a2, s.absmax2, "absmax2 step " + (t + 1));
            }
        }
    }

    @Test
    void lion8bitShouldMatchScalarReferenceOnEdgeGradients() {
        SplittableRandom rnd = new SplittableRandom(12);
        float[] p = params(rnd);
        float[] ref = p.clone();
        byte[] c1 = new byte[N];
        float[] a1 = new float[20];
        OptimizerHyper h = new OptimizerHyper(OptimizerName.LION8BIT, 0.9, 0.99, 0, 0.1);
        try (Optimizer opt = Optimizer.create(h, List.of(TensorSlice.whole("t", N)), 2)) {
            for (int t = 0; t < STEPS; t++) {
                float[] g = grads(t, rnd);
                opt.step(p, g, 1e-4);
                ScalarReference.lion8bit(ref, g, c1, a1, BnbScalars.of(1e-4, 0.9, 0.99, 0, 0.1, t + 1));
                assertBitsEqual(ref, p, "params after step " + (t + 1));
                assertBytesEqual(c1, opt.state().tensors().get(0).c1, "codes step " + (t + 1));
                assertBitsEqual(a1, opt.state().tensors().get(0).absmax1, "absmax step " + (t + 1));
            }
        }
    }

    @Test
    void nonFiniteGradientShouldLeaveParamUntouchedAndResetState() {
        int n = 4096;
        float[] p = new float[n];
        java.util.Arrays.fill(p, 0.5f);
        float[] g = new float[n];
        java.util.Arrays.fill(g, 0.1f);
        OptimizerHyper h = new OptimizerHyper(OptimizerName.ADAMW8BIT, 0.9, 0.999, 1e-8, 0.5);
        try (Optimizer opt = Optimizer.create(h, List.of(TensorSlice.whole("t", n)), 1)) {
            opt.step(p, g, 1e-3);
            float before = p[10];
            g[10] = Float.NaN;
            g[11] = Float.POSITIVE_INFINITY;
            opt.step(p, g, 1e-3);
            assertEquals(before, p[10]); // no step, no decay
            assertEquals(before, p[11]);
            TensorState s = opt.state().tensors().get(0);
            assertEquals(127, s.c1[10] & 0xFF); // m reset to 0.0
            assertEquals(0, s.c2[10] & 0xFF); // v reset to 0.0
            assertEquals(127, s.c1[11] & 0xFF);
        }
    }
}
