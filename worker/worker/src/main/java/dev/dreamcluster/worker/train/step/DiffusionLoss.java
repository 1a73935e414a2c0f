package dev.dreamcluster.worker.train.step;

import dev.dreamcluster.config.TrainFeatures;
import dev.dreamcluster.config.LossType;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.dreamcluster.diffusion.DdpmScheduler;
import dev.dreamcluster.worker.model.Tensors;

/**
 * EveryDream2's training loss (train.py:994-1031): per-sample weights (min-SNR-gamma: min(snr,
 * gamma)/snr, 1 where snr is 0; the epsilon form even for v-prediction, as there), then {@link
 * LossType}. Every mean is over all elements of this rank's equal slice of the global batch, so the
 * mean over ranks is the one-process loss. Scalars enter as libtorch-owned tensors (never Java numbers
 * on grad-tracked tensors).
 */
final class DiffusionLoss {
    private DiffusionLoss() {}

    static NDArray loss(NDArray pred, NDArray target, int[] t, DdpmScheduler s, TrainFeatures f) {
        return loss(pred, target, t, s, f, null);
    }

    /** @param itemScale EveryDream2's per-image loss_scale (null: all 1) */
    static NDArray loss(NDArray pred, NDArray target, int[] t, DdpmScheduler s, TrainFeatures f, float[] itemScale) {
        NDManager m = pred.getManager();
        int b = t.length;
        float[] w = new float[b];
        float[] early = new float[b];
        for (int i = 0; i < b; i++) {
            w[i] = itemScale == null ? 1f : itemScale[i];
            if (f.minSnrGamma() != null) {
                float alpha = s.sqrtAlphaCumprod(t[i]);
                float sigma = s.sqrtOneMinusAlphaCumprod(t[i]);
                float snr = (alpha / sigma) * (alpha / sigma);
                w[i] *= snr == 0 ? 1f : Math.min(snr, f.minSnrGamma().floatValue()) / snr;
            }
            early[i] = (float) t[i] / s.numTrainTimesteps();
        }
        Shape perSample = new Shape(b, 1, 1, 1);
        NDArray weight = Tensors.of(m, w, perSample);
        NDArray diff = pred.sub(target);
        if (f.lossType() == LossType.MSE) {
            return diff.square().mul(weight).mean();
        }
        NDArray huber = huber(diff);
        if (f.lossType() == LossType.HUBER) {
            return huber.mul(weight).mean();
        }
        NDArray bias = Tensors.of(m, early, perSample);
        NDArray oneMinus = Tensors.of(m, new float[] {1f}, new Shape()).sub(bias);
        NDArray mse = diff.square().mul(weight);
        huber = huber.mul(weight);
        return f.lossType() == LossType.MSE_HUBER
                ? mse.mul(bias).mean().add(huber.mul(oneMinus).mean())
                : huber.mul(bias).mean().add(mse.mul(oneMinus).mean());
    }

    /** torch's huber_loss with delta 1, elementwise: 0.5 q^2 + (|d| - q), q = min(|d|, 1). */
    static NDArray huber(NDArray diff) {
        NDManager m = diff.getManager();
        NDArray a = diff.abs();
        NDArray q = a.minimum(Tensors.of(m, new float[] {1f}, new Shape()));
        return q.square().mul(Tensors.of(m, new float[] {0.5f}, new Shape())).add(a.sub(q));
    }
}
