package dev.dreamcluster.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dreamcluster.config.Json;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code unet/config.json} of a diffusers UNet2DConditionModel, the keys SD 1.x/2.x use.
 *
 * @param attentionHeadDim per down block; diffusers' SD configs store the number of heads here (an
 *     int for SD1, a list for SD2), so it sets the head count
 * @param useLinearProjection SD2: proj_in/proj_out are Linear, not 1x1 Conv
 */
public record UNetConfig(int inChannels, int outChannels, int sampleSize, List<Integer> blockOutChannels,
        int layersPerBlock, List<String> downBlockTypes, List<String> upBlockTypes, List<Integer> attentionHeadDim,
        int crossAttentionDim, boolean useLinearProjection, int normNumGroups, double normEps, boolean flipSinToCos,
        int freqShift) {

    public static final List<String> DOWN = List.of("CrossAttnDownBlock2D", "DownBlock2D");
    public static final List<String> UP = List.of("CrossAttnUpBlock2D", "UpBlock2D");

    public UNetConfig {
        blockOutChannels = List.copyOf(blockOutChannels);
        downBlockTypes = List.copyOf(downBlockTypes);
        upBlockTypes = List.copyOf(upBlockTypes);
        attentionHeadDim = List.copyOf(attentionHeadDim);
        int n = blockOutChannels.size();
        if (n < 1 || downBlockTypes.size() != n || upBlockTypes.size() != n || attentionHeadDim.size() != n) {
            throw new IllegalArgumentException("unet config: block_out_channels, down/up_block_types and attention_head_dim"
                    + " must have the same length: " + blockOutChannels + " " + downBlockTypes + " " + upBlockTypes + " "
                    + attentionHeadDim);
        }
        for (String t : downBlockTypes) {
            if (!DOWN.contains(t)) {
                throw new IllegalArgumentException("unsupported down block type " + t + " (supported: " + DOWN + ")");
            }
        }
        for (String t : upBlockTypes) {
            if (!UP.contains(t)) {
                throw new IllegalArgumentException("unsupported up block type " + t + " (supported: " + UP + ")");
            }
        }
        for (int c : blockOutChannels) {
            if (c % normNumGroups != 0) {
                throw new IllegalArgumentException("block_out_channels " + c + " is not a multiple of norm_num_groups " + normNumGroups);
            }
        }
        if (layersPerBlock < 1 || crossAttentionDim < 1 || inChannels < 1 || outChannels < 1) {
            throw new IllegalArgumentException("unet config has a size < 1");
        }
    }

    /** Time embedding width: 4 x the first block's channels. */
    public int timeEmbedDim() {
        return blockOutChannels.get(0) * 4;
    }

    public static UNetConfig fromJson(JsonNode n) {
        return fromJson(n, "unet/config.json");
    }

    /** Refuses (naming {@code label} and the key) any value of a key DreamCluster does not implement. */
    public static UNetConfig fromJson(JsonNode n, String label) {
        ModelConfigKeys.check(n, label, ModelConfigKeys.UNET_READ, ModelConfigKeys.UNET_INERT, ModelConfigKeys.UNET_FIXED);
        if (n.path("layers_per_block").isArray()) {
            throw new dev.dreamcluster.config.ConfigError(label + " at layers_per_block: " + n.get("layers_per_block")
                    + " is not supported (DreamCluster implements one count for every block)");
        }
        JsonNode cadList = n.path("cross_attention_dim");
        if (cadList.isArray() && cadList.size() > 0) {
            for (JsonNode x : cadList) {
                if (x.asInt() != cadList.get(0).asInt()) {
                    throw new dev.dreamcluster.config.ConfigError(label + " at cross_attention_dim: " + cadList
                            + " is not supported (DreamCluster implements one width for every block)");
                }
            }
        }
        List<Integer> boc = ints(n.path("block_out_channels"));
        // diffusers: num_attention_heads, when given, is the head count; else attention_head_dim holds it
        JsonNode ahd = n.hasNonNull("num_attention_heads") ? n.get("num_attention_heads") : n.path("attention_head_dim");
        List<Integer> heads = new ArrayList<>();
        if (ahd.isArray()) {
            heads.addAll(ints(ahd));
        } else {
            for (int i = 0; i < boc.size(); i++) {
                heads.add(ahd.asInt(8));
            }
        }
        JsonNode cad = n.path("cross_attention_dim");
        return new UNetConfig(n.path("in_channels").asInt(4), n.path("out_channels").asInt(4),
                n.path("sample_size").asInt(64), boc, n.path("layers_per_block").asInt(2),
                strings(n.path("down_block_types")), strings(n.path("up_block_types")), heads,
                cad.isArray() ? cad.get(0).asInt() : cad.asInt(1280), n.path("use_linear_projection").asBoolean(false),
                n.path("norm_num_groups").asInt(32), n.path("norm_eps").asDouble(1e-5),
                n.path("flip_sin_to_cos").asBoolean(true), n.path("freq_shift").asInt(0));
    }

    public ObjectNode toJson() {
        ObjectNode n = Json.MAPPER.createObjectNode();
        n.put("_class_name", "UNet2DConditionModel");
        n.put("_diffusers_version", "0.21.4");
        n.put("act_fn", "silu");
        ArrayNode heads = n.putArray("attention_head_dim");
        attentionHeadDim.forEach(heads::add);
        ArrayNode b = n.putArray("block_out_channels");
        blockOutChannels.forEach(b::add);
        n.put("center_input_sample", false);
        n.put("cross_attention_dim", crossAttentionDim);
        ArrayNode d = n.putArray("down_block_types");
        downBlockTypes.forEach(d::add);
        n.put("downsample_padding", 1);
        n.put("flip_sin_to_cos", flipSinToCos);
        n.put("freq_shift", freqShift);
        n.put("in_channels", inChannels);
        n.put("layers_per_block", layersPerBlock);
        n.put("mid_block_scale_factor", 1);
        n.put("norm_eps", normEps);
        n.put("norm_num_groups", normNumGroups);
        n.put("out_channels", outChannels);
        n.put("sample_size", sampleSize);
        ArrayNode u = n.putArray("up_block_types");
        upBlockTypes.forEach(u::add);
        n.put("use_linear_projection", useLinearProjection);
        return n;
    }

    static List<Integer> ints(JsonNode a) {
        List<Integer> l = new ArrayList<>();
        a.forEach(x -> l.add(x.asInt()));
        return l;
    }

    static List<String> strings(JsonNode a) {
        List<String> l = new ArrayList<>();
        a.forEach(x -> l.add(x.asText()));
        return l;
    }
}
