package dev.dreamcluster.worker.train.grad;

import dev.dreamcluster.optim.OptimizerState;

/**
 * Where one component's flat parameters and gradients live, and the work whose form depends on
 * where: copying gradients out of the model, the shard's scaling and norm, the optimizer update in
 * place, copying parameters back. Layout (the run's ParamLayout part, which the plan hash covers):
 *
 * <pre>
 *   params [ t0 | t1 | ... ]   grads [ t0 | t1 | ... ]     tensor i at offset[i], numel[i] elements
 *                              rank r owns [shardBounds[r], shardBounds[r + 1])
 * </pre>
 */
public interface FlatStore extends AutoCloseable {
    /** grads = the model's accumulated .grad of every trainable tensor times {@code scale} (this rank's local sum). */
    void pullGrads(float scale);

    /** After the reduce-scatter: this rank's shard of the gradients times {@code scale}, in place; its sum of squares after. */
    double scaleShard(float scale);

    /** The global-norm clip: this rank's shard of the gradients times {@code coef}, in place. */
    void clipShard(float coef);

    /** One optimizer update of this rank's shard of the parameters at {@code lr}, in place. */
    void update(double lr);

    /** The flat parameters into the model's tensors (cast to the compute dtype) and the model's .grad zeroed. */
    void pushParams();

    /** The model's .grad zeroed, parameters untouched (a skipped step). */
    void zeroGrads();

    /** The first trainable tensor (index) whose .grad holds a non-finite value, or -1. */
    int firstNonFiniteGrad();

    /** {@link #firstNonFiniteGrad} over the model's trainable tensors (one check per tensor, on its device). */
    static int firstNonFiniteGrad(java.util.List<ai.djl.ndarray.NDArray> tensors) {
        for (int i = 0; i < tensors.size(); i++) {
            try (ai.djl.ndarray.NDArray g = tensors.get(i).getGradient();
                    ai.djl.ndarray.NDArray bad = g.isInfinite().logicalOr(g.isNaN()).any()) {
                if (bad.getBoolean()) {
                    return i;
                }
            }
        }
        return -1;
    }

    /** The host's flat parameters, complete (every rank's segment); null where they live on a device. */
    float[] hostParams();

    /** The host's flat gradients; null where they live on a device. */
    float[] hostGrads();

    /** The current master values of trainable tensor {@code i}: a copy on the host. */
    float[] values(int i);

    /** This rank's optimizer state (the live one; null without optimizer), for checkpoints. */
    OptimizerState optimizerState();

    /** Replaces this rank's optimizer state with {@code state} (already re-sharded to its slices). */
    void loadOptimizerState(OptimizerState state);

    @Override
    void close();
}
