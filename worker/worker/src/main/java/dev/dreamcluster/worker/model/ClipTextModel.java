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
        long len = ids.getShape().get(1);
        String e = "text_model.embeddings.";
        NDArray tok = Embedding.embedding(ids, w.get(e + "token_embedding.weight"), SparseFormat.DENSE).head();
        NDArray pos = w.get(e + "position_embedding.weight").get(new NDIndex("0:" + len));
        NDArray h = tok.add(pos);
        NDArray mask = Ops.causalMask(ids.getManager(), len, len, h.getDataType());
        float eps = (float) config.layerNormEps();
        int last = config.numHiddenLayers() - Math.max(1, clipSkip);
        for (int i = 0; i <= last; i++) {
            String p = "text_model.encoder.layers." + i + ".";
            NDArray x = ops.layerNorm(h, w.get(p + "layer_norm1.weight"), w.get(p + "layer_norm1.bias"), eps);
            NDArray q = ops.linear(x, w.get(p + "self_attn.q_proj.weight"), w.get(p + "self_attn.q_proj.bias"));
            NDArray k = ops.linear(x, w.get(p + "self_attn.k_proj.weight"), w.get(p + "self_attn.k_proj.bias"));
            NDArray v = ops.linear(x, w.get(p + "self_attn.v_proj.weight"), w.get(p + "self_attn.v_proj.bias"));
            NDArray a = ops.attention(q, k, v, config.numAttentionHeads(), mask);
            h = h.add(ops.linear(a, w.get(p + "self_attn.out_proj.weight"), w.get(p + "self_attn.out_proj.bias")));
            x = ops.layerNorm(h, w.get(p + "layer_norm2.weight"), w.get(p + "layer_norm2.bias"), eps);
            x = ops.linear(x, w.get(p + "mlp.fc1.weight"), w.get(p + "mlp.fc1.bias"));
            x = config.hiddenAct().equals("quick_gelu") ? ops.quickGelu(x) : ops.gelu(x);
            h = h.add(ops.linear(x, w.get(p + "mlp.fc2.weight"), w.get(p + "mlp.fc2.bias")));
        }
        return ops.layerNorm(h, w.get("text_model.final_layer_norm.weight"), w.get("text_model.final_layer_norm.bias"), eps);
    }
}
