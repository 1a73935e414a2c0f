package dev.dreamcluster.worker.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * Attention in query chunks ({@link Nn#attention} with rows &lt; Lq) against the plain form (one chunk),
 * in float32, outputs and the gradients of q, k and v. (The chunks recomputed one at a time by a
 * checkpointed backward are {@link GradientCheckpointingTest}'s.)
 *
 * <p>Bound and why: a query row's scores, softmax and output read only that row of q, so the chunked
 * form computes the same sums; but libtorch's CPU GEMM picks its micro-kernel by the matrix shape (a
 * 1-row chunk runs as a matrix-vector product, a 5-row remainder as another kernel), and the kernels
 * round differently. dk and dv are sums over every query: one product over all Lq queries in the
 * plain form, one partial product per chunk here, so they are reassociated. Either way the chunked
 * result is another float32 evaluation of the same expression: required within relative L2 1e-6 of the
 * plain form (measured: 0 to 3e-7; float32 epsilon is 6e-8) and no further from the float64 result
 * than twice the plain form's own float32 error plus 1e-7. Where the chunk's GEMM shape picks the same
 * kernel (here 32-query chunks) output and dq come out bit-exact; the test prints which.
 */
class ChunkedAttentionTest {
    static final double REL = 1e-6;

    record Case(String name, int batch, int heads, int lq, int lk, int channels, boolean masked) {}

    static final List<Case> CASES = List.of(
            new Case("self-attention 64x64 latents scaled down", 2, 4, 96, 96, 32, false),
            new Case("cross-attention to 77 tokens", 2, 4, 96, 77, 32, false),
            new Case("causal (CLIP)", 2, 4, 77, 77, 48, true));

    /** Output, then the gradients of q, k and v for loss sum(out * upstream), as float32 values. */
    static List<float[]> run(Case c, long rows, DataType dt) {
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            SplittableRandom r = new SplittableRandom(c.lq() * 31L + c.lk());
            NDArray q = gauss(m, r, new Shape(c.batch(), c.lq(), c.channels()), dt);
            NDArray k = gauss(m, r, new Shape(c.batch(), c.lk(), c.channels()), dt);
            NDArray v = gauss(m, r, new Shape(c.batch(), c.lk(), c.channels()), dt);
            NDArray up = gauss(m, r, new Shape(c.batch(), c.lq(), c.channels()), dt);
            NDArray mask = c.masked() ? Ops.causalMask(m, c.lq(), c.lk(), dt) : null;
            List<float[]> out = new ArrayList<>();
            try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                NDArray y = Nn.attention(q, k, v, c.heads(), mask, rows);
                gc.backward(y.mul(up).sum());
                out.add(Tensors.read(y));
            }
            for (NDArray a : new NDArray[] {q, k, v}) {
                out.add(Tensors.read(a.getGradient()));
            }
            return out;
        }
    }

    static NDArray gauss(NDManager m, SplittableRandom r, Shape s, DataType dt) {
        float[] f = new float[Math.toIntExact(s.size())];
        for (int i = 0; i < f.length; i++) {
            f[i] = (float) (r.nextDouble() * 2 - 1) * 1.7f;
        }
        NDArray a = Tensors.of(m, f, s);
        if (dt != DataType.FLOAT32) {
            a = a.toType(dt, false);
        }
        a.setRequiresGradient(true);
        return a;
    }

    static double relL2(float[] a, float[] ref) {
        double n = 0;
        double d = 0;
        for (int i = 0; i < a.length; i++) {
            double e = (double) a[i] - ref[i];
            n += e * e;
            d += (double) ref[i] * ref[i];
        }
        return Math.sqrt(n / d);
    }

    static final String[] WHAT = {"output", "dq", "dk", "dv"};

    @Test
    void chunkedAttentionShouldEqualThePlainForm() {
        for (Case c : CASES) {
            List<float[]> plain = run(c, c.lq(), DataType.FLOAT32);
            List<float[]> f64 = run(c, c.lq(), DataType.FLOAT64);
            for (long rows : new long[] {1, 7, 32, c.lq() - 1}) {
                List<float[]> chunked = run(c, rows, DataType.FLOAT32);
                StringBuilder line = new StringBuilder(String.format("chunked attention, %s, %d-query chunks:", c.name(), rows));
                for (int i = 0; i < 4; i++) {
                    double e = relL2(chunked.get(i), plain.get(i));
                    line.append(String.format(" %s %s (plain vs float64 %.1e)", WHAT[i],
                            e == 0 ? "bit-exact" : String.format("%.1e", e), relL2(plain.get(i), f64.get(i))));
                    double own = relL2(plain.get(i), f64.get(i));
                    assertTrue(e <= REL, c.name() + " rows " + rows + ": " + WHAT[i] + " relative L2 to the plain form " + e);
                    double vs64 = relL2(chunked.get(i), f64.get(i));
                    assertTrue(vs64 <= 2 * own + 1e-7, c.name() + " rows " + rows + ": " + WHAT[i] + " relative L2 to float64 " + vs64
                            + ", the plain form's " + own);
                }
                System.out.println(line);
            }
        }
    }

    @Test
    void chunkRowsShouldKeepEachChunkWithinTheBudget() {
        assertEquals(4096, Nn.chunkRows(4, 8, 4096, 4096, 0), "0: unchunked");
        assertEquals(512, Nn.chunkRows(4, 8, 4096, 4096, Ops.Memory.DEFAULT_ATTENTION_CHUNK_SCORES), "SD1.5 512 px batch 4");
        assertEquals(4096, Nn.chunkRows(4, 8, 4096, 77, Ops.Memory.DEFAULT_ATTENTION_CHUNK_SCORES), "cross-attention fits whole");
        assertEquals(1, Nn.chunkRows(4, 8, 4096, 4096, 5), "at least one row");
    }
}
