package dev.dreamcluster.optim;

import dev.dreamcluster.optim.kernel.AdamWKernel;
import java.util.List;

/**
 * torch.optim.AdamW (Loshchilov and Hutter, arXiv:1711.05101): decoupled weight decay applied before
 * the moments, eps added after the bias-corrected sqrt. State: m and v in fp32, 8 bytes/param.
 * Defaults in DreamCluster configs: betas (0.9, 0.999), eps 1e-8, wd 0.01.
 */
public final class AdamW extends Optimizer {
    private AdamWKernel.Scalars scalars;

    AdamW(OptimizerHyper hyper, List<TensorSlice> slices, int threads) {
        super(hyper, slices, threads);
    }

    @Override
    protected void prepare(double lr, long t) {
        scalars = AdamWKernel.Scalars.of(lr, hyper.beta1(), hyper.beta2(), hyper.eps(), hyper.weightDecay(), t);
    }

    @Override
    protected void run(TensorState s, float[] p, float[] g, int off, int blockFrom, int blockTo, float[] s1, float[] s2,
            float[] s3, int[] idx) {
        int from = elemFrom(blockFrom);
        int n = elemTo(blockTo, s.slice.length()) - from;
        AdamWKernel.step(p, off + from, g, off + from, s.m, s.v, from, n, scalars);
    }
}
