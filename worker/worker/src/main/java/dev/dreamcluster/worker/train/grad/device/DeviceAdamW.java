package dev.dreamcluster.worker.train.grad.device;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import dev.dreamcluster.optim.OptimizerHyper;
import dev.dreamcluster.optim.TensorSlice;
import dev.dreamcluster.optim.TensorState;
import dev.dreamcluster.optim.kernel.AdamWKernel;
import java.util.ArrayList;
import java.util.List;

/**
 * AdamW ({@link dev.dreamcluster.optim.AdamW}) on the device: m and v as fp32 tensors of the shard's
 * length, the same offsets as the shard. The shard is updated in contiguous pieces of at most
 * {@code chunkElements} (views of the flat buffers, in place). Passes per element per step: 15
 * elementwise ops (16 with weight decay; the correctly rounded sqrt is 3 of them), reading p, g, m, v
 * and writing p, m, v.
 */
final class DeviceAdamW extends DeviceOptimizer {
    private final NDArray m;
    private final NDArray v;

    DeviceAdamW(OptimizerHyper hyper, List<TensorSlice> slices, NDManager deviceManager, Tuning tuning) {
        super(hyper, slices, deviceManager, tuning);
        this.m = keep(DeviceCopy.zeros(manager, length, DataType.FLOAT32));
        this.v = keep(DeviceCopy.zeros(manager, length, DataType.FLOAT32));
    }

    @Override
    protected void update(NDArray params, NDArray grads, long from, double lr, long t) {
        AdamWKernel.Scalars s = AdamWKernel.Scalars.of(lr, hyper.beta1(), hyper.beta2(), hyper.eps(), hyper.weightDecay(), t);
        boolean lerpLow = Math.abs(s.lerpWeight()) < 0.5f;
        NDArray wdf = s.decay() && s.wdFactor() != 1.0f ? scalar(s.wdFactor()) : null;
        NDArray w = scalar(lerpLow ? s.lerpWeight() : 1.0f - s.lerpWeight());
        NDArray b2 = scalar(s.beta2());
        NDArray omb2 = scalar(s.oneMinusBeta2());
        NDArray bc2s = scalar(s.bc2Sqrt());
        NDArray nss = scalar(s.negStepSize());
        NDArray eps = scalar(s.eps());
        for (long a = 0; a < length; a += tuning.chunkElements()) {
            long b = Math.min(length, a + tuning.chunkElements());
            try (NDScope scope = new NDScope()) {
                scope.suppressNotUsedWarning();
                Kernels.adamw(range(params, from + a, from + b), range(grads, from + a, from + b), range(m, a, b),
                        range(v, a, b), wdf, lerpLow, w, b2, omb2, bc2s, nss, eps);
            }
        }
    }

    @Override
    protected List<TensorState> download() {
        List<TensorState> out = new ArrayList<>(slices.size());
        for (int i = 0; i < slices.size(); i++) {
            TensorSlice s = slices.get(i);
            out.add(new TensorState(s, TensorState.Kind.FP32_2, read(m, offsets[i], s.length()),
                    read(v, offsets[i], s.length()), null, null, null, null));
        }
        return out;
    }

    @Override
    protected void upload(List<TensorState> states) {
        for (int i = 0; i < states.size(); i++) {
            write(states.get(i).m, m, offsets[i]);
            write(states.get(i).v, v, offsets[i]);
        }
    }

    @Override
    public long stateBytes() {
        return 8 * length;
    }
}
