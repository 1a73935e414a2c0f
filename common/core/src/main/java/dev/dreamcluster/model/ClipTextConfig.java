package dev.dreamcluster.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dreamcluster.config.Json;

/**
 * {@code text_encoder/config.json} of a diffusers folder (transformers' CLIPTextConfig): the keys
 * that shape the model. Unknown keys are ignored, as transformers does.
 *
 * @param hiddenAct {@code quick_gelu} (SD1, CLIP ViT-L) or {@code gelu} (SD2, OpenCLIP ViT-H)
 */
public record ClipTextConfig(int vocabSize, int hiddenSize, int numHiddenLayers, int numAttentionHeads,
        int intermediateSize, int maxPositionEmbeddings, String hiddenAct, double layerNormEps) {

    public ClipTextConfig {
        if (vocabSize < 1 || hiddenSize < 1 || numHiddenLayers < 1 || numAttentionHeads < 1 || intermediateSize < 1
                || maxPositionEmbeddings < 1) {
            throw new IllegalArgumentException("CLIP text config has a size < 1: " + this);
        }
        if (hiddenSize % numAttentionHeads != 0) {
            throw new IllegalArgumentException("hidden_size " + hiddenSize + " is not a multiple of num_attention_heads "
                    + numAttentionHeads);
        }
        if (!hiddenAct.equals("quick_gelu") && !hiddenAct.equals("gelu")) {
            throw new IllegalArgumentException("hidden_act must be quick_gelu or gelu, got " + hiddenAct);
        }
    }

    public static ClipTextConfig fromJson(JsonNode n) {
        return new ClipTextConfig(n.path("vocab_size").asInt(49408), n.path("hidden_size").asInt(512),
                n.path("num_hidden_layers").asInt(12), n.path("num_attention_heads").asInt(8),
                n.path("intermediate_size").asInt(2048), n.path("max_position_embeddings").asInt(77),
                n.path("hidden_act").asText("quick_gelu"), n.path("layer_norm_eps").asDouble(1e-5));
    }

    public ObjectNode toJson() {
        ObjectNode n = Json.MAPPER.createObjectNode();
        n.putArray("architectures").add("CLIPTextModel");
        n.put("model_type", "clip_text_model");
        n.put("vocab_size", vocabSize);
        n.put("hidden_size", hiddenSize);
        n.put("num_hidden_layers", numHiddenLayers);
        n.put("num_attention_heads", numAttentionHeads);
        n.put("intermediate_size", intermediateSize);
        n.put("max_position_embeddings", maxPositionEmbeddings);
        n.put("hidden_act", hiddenAct);
        n.put("layer_norm_eps", layerNormEps);
        n.put("bos_token_id", 0);
        n.put("eos_token_id", 2);
        n.put("pad_token_id", 1);
        n.put("torch_dtype", "float32");
        return n;
    }
}
