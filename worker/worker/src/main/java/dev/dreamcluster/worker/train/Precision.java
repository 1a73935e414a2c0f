package dev.dreamcluster.worker.train;

import ai.djl.ndarray.types.DataType;

/**
 * The dtype the model computes in. FP32: as before. FP16 (train.json {@code amp}): the model's
 * tensors are casts of the fp32 master weights in the flat buffers (the optimizer keeps updating
 * those), refreshed after every update; the loss is taken in fp32 and scaled ({@link GradScaler})
 * because fp16's 5-bit exponent underflows small gradients. BF16 (fp32's range, no scaling) is
 * named for the day DJL's JNI supports it: 0.36's cannot create a bfloat16 tensor at all.
 */
public enum Precision {
    FP32(DataType.FLOAT32), BF16(DataType.BFLOAT16), FP16(DataType.FLOAT16);

    private final DataType dataType;

    Precision(DataType dataType) {
        this.dataType = dataType;
    }

    public DataType dataType() {
        return dataType;
    }

    public boolean scalesLoss() {
        return this == FP16;
    }

    @Override
    public String toString() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }
}
