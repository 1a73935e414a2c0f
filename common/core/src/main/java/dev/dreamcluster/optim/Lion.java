package dev.dreamcluster.optim;

import dev.dreamcluster.optim.kernel.LionKernel;
import java.util.List;

/**
 * Lion as lion-pytorch implements it (Chen et al., arXiv:2302.06675): the sign of an interpolated
 * momentum is the update. State: m in fp32, 4 bytes/param. The paper advises 3-10x smaller lr and
 * 3-10x larger decay than AdamW.
 */
public final class Lion extends Optimizer {
    private LionKernel.Scalars scalars;

    Lion(OptimizerHyper hyper, List<TensorSlice> slices, int threads) {
        super(hyper, slices, threads);
    }

    @Override
    protected void prepare(double lr, long t) {
        scalars = LionKernel.Scalars.of(lr, hyper.beta1(), hyper.beta2(), hyper.weightDecay());
    }

    @Override
    protected void run(TensorState s, float[] p, float[] g, int off, int blockFrom, int blockTo, float[] s1, float[] s2,
            float[] s3, int[] idx) {
        int from = elemFrom(blockFrom);
        int n = elemTo(blockTo, s.slice.length()) - from;
        LionKernel.step(p, off + from, g, off + from, s.m, from, n, scalars);
    }
}
