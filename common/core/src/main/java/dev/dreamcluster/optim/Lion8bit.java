package dev.dreamcluster.optim;

import dev.dreamcluster.optim.kernel.Blockwise8bitKernel;
import dev.dreamcluster.optim.kernel.BnbScalars;
import dev.dreamcluster.optim.kernel.Fp32FallbackKernel;
import java.util.List;

/**
 * bitsandbytes Lion8bit: one signed 8-bit state with a per-256 absmax (1.02 bytes/param), decoupled
 * decay before the step. Tensors under 4096 elements use bitsandbytes' 32-bit Lion kernel.
 */
public final class Lion8bit extends Optimizer {
    private BnbScalars scalars;

    Lion8bit(OptimizerHyper hyper, List<TensorSlice> slices, int threads) {
        super(hyper, slices, threads);
    }

    @Override
    protected void prepare(double lr, long t) {
        scalars = BnbScalars.of(lr, hyper.beta1(), hyper.beta2(), 0.0, hyper.weightDecay(), t);
    }

    @Override
    protected void run(TensorState s, float[] p, float[] g, int off, int blockFrom, int blockTo, float[] s1, float[] s2,
            float[] s3, int[] idx) {
        int n = s.slice.length();
        if (s.kind == TensorState.Kind.Q8_1) {
            Blockwise8bitKernel.lion(p, off, g, off, s.c1, 0, s.absmax1, 0, n, blockFrom, blockTo, scalars, s1, s2, idx);
        } else {
            int from = elemFrom(blockFrom);
            Fp32FallbackKernel.lion(p, off + from, g, off + from, s.m, from, elemTo(blockTo, n) - from, scalars);
        }
    }
}
