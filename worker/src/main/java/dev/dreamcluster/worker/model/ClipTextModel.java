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

    public ClipTextModel(ClipTextConfig config, ModelWeights weights) {
        this.config = config;
        this.w = weights;
    }

    /** {@code ids}: int64 token ids [B, L]. */
    public NDArray forward(NDArray ids, int clipSkip) {
        long len = ids.getShape().get(1);
        String e = "text_model.embeddings.";
        NDArray tok = Embedding.embedding(ids, w.get(e + "token_embedding.weight"), SparseFormat.DENSE).head();
        NDArray pos = w.get(e + "position_embedding.weight").get(new NDIndex("0:" + len));
        NDArray h = tok.add(pos);
        NDArray mask = Tensors.like(causalMask(ids.getManager(), len), h);
        float eps = (float) config.layerNormEps();
        int last = config.numHiddenLayers() - Math.max(1, clipSkip);
        for (int i = 0; i <= last; i++) {
            String p = "text_model.encoder.layers." + i + ".";
            NDArray x = Nn.layerNorm(h, w.get(p + "layer_norm1.weight"), w.get(p + "layer_norm1.bias"), eps);
            NDArray q = Nn.linear(x, w.get(p + "self_attn.q_proj.weight"), w.get(p + "self_attn.q_proj.bias"));
            NDArray k = Nn.linear(x, w.get(p + "self_attn.k_proj.weight"), w.get(p + "self_attn.k_proj.bias"));
            NDArray v = Nn.linear(x, w.get(p + "self_attn.v_proj.weight"), w.get(p + "self_attn.v_proj.bias"));
            NDArray a = Nn.attention(q, k, v, config.numAttentionHeads(), mask);
            h = h.add(Nn.linear(a, w.get(p + "self_attn.out_proj.weight"), w.get(p + "self_attn.out_proj.bias")));
            x = Nn.layerNorm(h, w.get(p + "layer_norm2.weight"), w.get(p + "layer_norm2.bias"), eps);
            x = Nn.linear(x, w.get(p + "mlp.fc1.weight"), w.get(p + "mlp.fc1.bias"));
            x = config.hiddenAct().equals("quick_gelu") ? Nn.quickGelu(x) : Nn.gelu(x);
            h = h.add(Nn.linear(x, w.get(p + "mlp.fc2.weight"), w.get(p + "mlp.fc2.bias")));
        }
        return Nn.layerNorm(h, w.get("text_model.final_layer_norm.weight"), w.get("text_model.final_layer_norm.bias"), eps);
    }

    /** Additive causal mask [L, L]: 0 on and below the diagonal, float32 min above (as transformers). */
    static NDArray causalMask(NDManager m, long len) {
        float[] v = new float[(int) (len * len)];
        for (int i = 0; i < len; i++) {
            for (int j = i + 1; j < len; j++) {
                v[(int) (i * len + j)] = -Float.MAX_VALUE;
            }
        }
        return Tensors.of(m, v, new Shape(len, len));
    }
}
