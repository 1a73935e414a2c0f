package dev.dreamcluster.bench;

import dev.dreamcluster.optim.kernel.AdamWKernel;
import dev.dreamcluster.optim.kernel.Blockwise8bitKernel;
import dev.dreamcluster.optim.kernel.BnbScalars;
import dev.dreamcluster.optim.kernel.LionKernel;
import dev.dreamcluster.optim.kernel.QuantMap;

/**
 * The scalar kernels (what runs without jdk.incubator.vector) on one thread over one whole tensor,
 * so the bench can print the vector kernels' speed-up measured in the same run. Same hyperparameters
 * as the optimizers in {@link OptimBenchMain}.
 */
final class ScalarForms {
    private final String optimizer;
    private final int n;
    private final float[] p;
    private final float[] g;
    private final float[] m;
    private final float[] v;
    private final byte[] c1;
    private final byte[] c2;
    private final float[] a1;
    private final float[] a2;
    private final float[][] scratch = new float[3][QuantMap.BLOCK];
    private final int[] idx = new int[QuantMap.BLOCK];
    private long t;

    ScalarForms(String optimizer, float[] params, float[] grads) {
        this.optimizer = optimizer;
        this.n = params.length;
        this.p = params.clone();
        this.g = grads;
        boolean fp32 = optimizer.equals("adamw") || optimizer.equals("lion");
        int blocks = (n + QuantMap.BLOCK - 1) / QuantMap.BLOCK;
        this.m = fp32 ? new float[n] : null;
        this.v = optimizer.equals("adamw") ? new float[n] : null;
        this.c1 = fp32 ? null : new byte[n];
        this.c2 = optimizer.equals("adamw8bit") ? new byte[n] : null;
        this.a1 = fp32 ? null : new float[blocks];
        this.a2 = optimizer.equals("adamw8bit") ? new float[blocks] : null;
    }

    void step() {
        t++;
        int blocks = (n + QuantMap.BLOCK - 1) / QuantMap.BLOCK;
        switch (optimizer) {
            case "adamw" -> AdamWKernel.stepScalar(p, 0, g, 0, m, v, 0, n, AdamWKernel.Scalars.of(1e-4, 0.9, 0.999, 1e-8, 0.01, t));
            case "lion" -> LionKernel.stepScalar(p, 0, g, 0, m, 0, n, LionKernel.Scalars.of(1e-4, 0.9, 0.99, 0.01));
            case "adamw8bit" -> Blockwise8bitKernel.adam(p, 0, g, 0, c1, c2, 0, a1, a2, 0, n, 0, blocks,
                    BnbScalars.of(1e-4, 0.9, 0.999, 1e-8, 0.01, t), scratch[0], scratch[1], scratch[2], idx, false);
            case "lion8bit" -> Blockwise8bitKernel.lion(p, 0, g, 0, c1, 0, a1, 0, n, 0, blocks,
                    BnbScalars.of(1e-4, 0.9, 0.99, 0.0, 0.01, t), scratch[0], scratch[1], idx, false);
            default -> throw new IllegalArgumentException(optimizer);
        }
    }
}
