package dev.dreamcluster.worker.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import ai.djl.ndarray.types.SparseFormat;
import ai.djl.nn.core.Embedding;
import dev.dreamcluster.model.ClipTextConfig;

/**
 * transformers' CLIPTextModel: token + position embeddings, pre-LayerNorm encoder layers with causal
 * self-attention, final LayerNorm; returns last_hidden_state [B, L, hidden]. With {@code clipSkip}
 * k > 1 the output is the final LayerNorm of layer (n - k)'s output, as EveryDream2 uses it.
 */
public final class ClipTextModel {
    private final ClipTextConfig config;
    private final ModelWeights w;
    private final Ops ops;

    public ClipTextModel(ClipTextConfig config, ModelWeights weights, Ops ops) {
        this.config = config;
        this.w = weights;
        this.ops = ops;
    }

    /** {@code ids}: int64 token ids [B, L]. */
    public NDArray forward(NDArray ids, int clipSkip) {
        return forward(ids, clipSkip, Recompute.DIRECT);
    }

    /**
     * The training forward through {@code rc} ({@link Ops#recompute()}): the embeddings, each
     * encoder layer and the final LayerNorm are segments; with a recording session each keeps only
     * its input and is recomputed in {@code rc}'s backward (frozen leading layers are not recomputed:
     * no gradient is needed before the first trainable one).
     */
    public NDArray forward(NDArray ids, int clipSkip, Recompute rc) {
        if (!rc.recording()) { // the layer outputs autograd does not keep are freed when the forward returns
            return Recompute.DIRECT.run((r, in) -> layers(in.get(0), clipSkip, r), ids);
        }
        return layers(ids, clipSkip, rc);
    }

    private NDArray layers(NDArray ids, int clipSkip, Recompute rc) {
        long len = ids.getShape().get(1);
        String e = "text_model.embeddings.";
        NDArray h = rc.run(w.anyTrainable(e), (r, in) -> {
            NDArray tok = Embedding.embedding(in.get(0), w.get(e + "token_embedding.weight"), SparseFormat.DENSE).head();
            NDArray pos = w.get(e + "position_embedding.weight").get(new NDIndex("0:" + len));
            return tok.add(pos);
        }, ids);
        NDArray mask = rc.constant(Ops.causalMask(ids.getManager(), len, len, w.get(e + "position_embedding.weight").getDataType()));
        float eps = (float) config.layerNormEps();
        int last = config.numHiddenLayers() - Math.max(1, clipSkip);
        for (int i = 0; i <= last; i++) {
            String p = "text_model.encoder.layers." + i + ".";
            h = rc.run(w.anyTrainable(p), (r, in) -> layer(p, in.get(0), in.get(1), eps), h, mask);
        }
        String f = "text_model.final_layer_norm.";
        return rc.run(w.anyTrainable(f), (r, in) -> ops.layerNorm(in.get(0), w.get(f + "weight"), w.get(f + "bias"), eps), h);
    }

    /** One pre-LayerNorm encoder layer: causal self-attention, then the MLP, each with a residual. */
    private NDArray layer(String p, NDArray h, NDArray mask, float eps) {
        NDArray x = ops.layerNorm(h, w.get(p + "layer_norm1.weight"), w.get(p + "layer_norm1.bias"), eps);
        NDArray q = ops.linear(x, w.get(p + "self_attn.q_proj.weight"), w.get(p + "self_attn.q_proj.bias"));
        NDArray k = ops.linear(x, w.get(p + "self_attn.k_proj.weight"), w.get(p + "self_attn.k_proj.bias"));
        NDArray v = ops.linear(x, w.get(p + "self_attn.v_proj.weight"), w.get(p + "self_attn.v_proj.bias"));
        NDArray a = ops.attention(q, k, v, config.numAttentionHeads(), mask);
        h = h.add(ops.linear(a, w.get(p + "self_attn.out_proj.weight"), w.get(p + "self_attn.out_proj.bias")));
        x = ops.layerNorm(h, w.get(p + "layer_norm2.weight"), w.get(p + "layer_norm2.bias"), eps);
        x = ops.linear(x, w.get(p + "mlp.fc1.weight"), w.get(p + "mlp.fc1.bias"));
        x = config.hiddenAct().equals("quick_gelu") ? ops.quickGelu(x) : ops.gelu(x);
        return h.add(ops.linear(x, w.get(p + "mlp.fc2.weight"), w.get(p + "mlp.fc2.bias")));
    }
}
