package dev.dreamcluster.optim;

import dev.dreamcluster.optim.kernel.Blockwise8bitKernel;
import dev.dreamcluster.optim.kernel.BnbScalars;
import dev.dreamcluster.optim.kernel.Fp32FallbackKernel;
import java.util.List;

/**
 * bitsandbytes AdamW8bit (Dettmers et al., "8-bit Optimizers via Block-wise Quantization",
 * arXiv:2110.02861): m and v stored as uint8 codes of the dynamic maps with one fp32 absmax per 256
 * elements (2.03 bytes/param); decay applied after the step. Tensors under 4096 elements keep fp32
 * state and use bitsandbytes' 32-bit kernel.
 */
public final class AdamW8bit extends Optimizer {
    private BnbScalars scalars;

    AdamW8bit(OptimizerHyper hyper, List<TensorSlice> slices, int threads) {
        super(hyper, slices, threads);
    }

    @Override
    protected void prepare(double lr, long t) {
        scalars = BnbScalars.of(lr, hyper.beta1(), hyper.beta2(), hyper.eps(), hyper.weightDecay(), t);
    }

    @Override
    protected void run(TensorState s, float[] p, float[] g, int off, int blockFrom, int blockTo, float[] s1, float[] s2,
            float[] s3, int[] idx) {
        int n = s.slice.length();
        if (s.kind == TensorState.Kind.Q8_2) {
            Blockwise8bitKernel.adam(p, off, g, off, s.c1, s.c2, 0, s.absmax1, s.absmax2, 0, n, blockFrom, blockTo,
                    scalars, s1, s2, s3, idx);
        } else {
            int from = elemFrom(blockFrom);
            Fp32FallbackKernel.adam(p, off + from, g, off + from, s.m, s.v, from, elemTo(blockTo, n) - from, scalars);
        }
    }
}
