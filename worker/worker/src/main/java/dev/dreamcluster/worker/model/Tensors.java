package dev.dreamcluster.worker.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;

/**
 * Creates NDArrays from Java data in memory libtorch owns. DJL's {@code create} wraps a Java direct
 * buffer with {@code from_blob}; once that NDArray is closed the buffer may be collected while a
 * view or a saved tensor still points into it (seen here as rare, GC-timed corruption of gradients).
 * A clone while the buffer is alive removes the hazard, at the cost of one copy.
 */
public final class Tensors {
    private Tensors() {}

    public static NDArray of(NDManager m, float[] data, Shape shape) {
        try (NDArray blob = m.create(data, shape)) {
            return blob.duplicate();
        }
    }

    public static NDArray of(NDManager m, long[] data, Shape shape) {
        try (NDArray blob = m.create(data, shape)) {
            return blob.duplicate();
        }
    }

    /**
     * The values of {@code a} as float[]. DJL's toFloatArray on a non-contiguous tensor (autograd often
     * produces transposed weight gradients) reads through a temporary contiguous copy that may already
     * be freed; flattening first gives a contiguous tensor that stays alive while it is read.
     */
    public static float[] read(NDArray a) {
        try (NDArray flat = a.reshape(-1)) {
            if (flat.getDataType() != ai.djl.ndarray.types.DataType.FLOAT32) { // fp16 compute tensors and their grads
                try (NDArray f = flat.toType(ai.djl.ndarray.types.DataType.FLOAT32, false)) {
                    return f.toFloatArray();
                }
            }
            return flat.toFloatArray();
        }
    }

    /**
     * {@link #read} into {@code dst[off ..]} (every element of {@code a}): one bulk copy out of the
     * tensor's bytes, without a new float[] per tensor (the gradients of a step are the model's size).
     */
    public static void readInto(NDArray a, float[] dst, int off) {
        try (NDArray flat = a.reshape(-1)) {
            if (flat.getDataType() != ai.djl.ndarray.types.DataType.FLOAT32) {
                try (NDArray f = flat.toType(ai.djl.ndarray.types.DataType.FLOAT32, false)) {
                    f.toByteBuffer().asFloatBuffer().get(dst, off, Math.toIntExact(f.size()));
                }
                return;
            }
            flat.toByteBuffer().asFloatBuffer().get(dst, off, Math.toIntExact(flat.size()));
        }
    }

    /** {@code x} in {@code like}'s dtype (constants meeting fp16 activations, which would otherwise promote to fp32). */
    public static NDArray like(NDArray x, NDArray like) {
        return x.getDataType() == like.getDataType() ? x : x.toType(like.getDataType(), false);
    }
}
