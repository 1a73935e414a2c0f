package dev.dreamcluster.worker.train.grad.device;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import dev.dreamcluster.optim.OptimizerHyper;
import dev.dreamcluster.optim.TensorSlice;
import dev.dreamcluster.optim.TensorState;
import dev.dreamcluster.optim.kernel.LionKernel;
import java.util.ArrayList;
import java.util.List;

/**
 * Lion ({@link dev.dreamcluster.optim.Lion}) on the device: m as an fp32 tensor of the shard's length.
 * Passes per element per step: 9 elementwise ops (+1 with weight decay, unless 1 - lr*wd rounds to
 * 1), reading p, g, m and writing p, m.
 */
final class DeviceLion extends DeviceOptimizer {
    private final NDArray m;

    DeviceLion(OptimizerHyper hyper, List<TensorSlice> slices, NDManager deviceManager, Tuning tuning) {
        super(hyper, slices, deviceManager, tuning);
        this.m = keep(DeviceCopy.zeros(manager, length, DataType.FLOAT32));
    }

    @Override
    protected void update(NDArray params, NDArray grads, long from, double lr, long t) {
        LionKernel.Scalars s = LionKernel.Scalars.of(lr, hyper.beta1(), hyper.beta2(), hyper.weightDecay());
        NDArray wdf = s.wdFactor() != 1.0f ? scalar(s.wdFactor()) : null;
        NDArray b1 = scalar(s.beta1());
        NDArray omb1 = scalar(s.oneMinusBeta1());
        NDArray negLr = scalar(s.negLr());
        NDArray b2 = scalar(s.beta2());
        NDArray omb2 = scalar(s.oneMinusBeta2());
        for (long a = 0; a < length; a += tuning.chunkElements()) {
            long b = Math.min(length, a + tuning.chunkElements());
            try (NDScope scope = new NDScope()) {
                scope.suppressNotUsedWarning();
                Kernels.lion(range(params, from + a, from + b), range(grads, from + a, from + b), range(m, a, b), wdf, b1,
                        omb1, negLr, b2, omb2);
            }
        }
    }

    @Override
    protected List<TensorState> download() {
        List<TensorState> out = new ArrayList<>(slices.size());
        for (int i = 0; i < slices.size(); i++) {
            TensorSlice s = slices.get(i);
            out.add(new TensorState(s, TensorState.Kind.FP32_1, read(m, offsets[i], s.length()), null, null, null, null,
                    null));
        }
        return out;
    }

    @Override
    protected void upload(List<TensorState> states) {
        for (int i = 0; i < states.size(); i++) {
            write(states.get(i).m, m, offsets[i]);
        }
    }

    @Override
    public long stateBytes() {
        return 4 * length;
    }
}
