package dev.dreamcluster.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dreamcluster.config.Json;
import java.util.List;

/**
 * {@code vae/config.json} of a diffusers AutoencoderKL.
 *
 * @param scalingFactor latents are multiplied by this before the UNet (0.18215 for SD 1.x/2.x)
 */
public record VaeConfig(int inChannels, int outChannels, int latentChannels, List<Integer> blockOutChannels,
        int layersPerBlock, int normNumGroups, int sampleSize, double scalingFactor) {

    public VaeConfig {
        blockOutChannels = List.copyOf(blockOutChannels);
        if (blockOutChannels.isEmpty() || layersPerBlock < 1 || latentChannels < 1) {
            throw new IllegalArgumentException("vae config has a size < 1");
        }
        for (int c : blockOutChannels) {
            if (c % normNumGroups != 0) {
                throw new IllegalArgumentException("vae block_out_channels " + c + " is not a multiple of norm_num_groups "
                        + normNumGroups);
            }
        }
    }

    public static VaeConfig fromJson(JsonNode n) {
        return fromJson(n, "vae/config.json");
    }

    /** Refuses (naming {@code label} and the key) any value of a key DreamCluster does not implement. */
    public static VaeConfig fromJson(JsonNode n, String label) {
        ModelConfigKeys.check(n, label, ModelConfigKeys.VAE_READ, ModelConfigKeys.VAE_INERT, ModelConfigKeys.VAE_FIXED);
        for (String k : java.util.List.of("down_block_types", "up_block_types")) {
            String want = k.startsWith("down") ? "DownEncoderBlock2D" : "UpDecoderBlock2D";
            for (JsonNode t : n.path(k)) {
                if (!t.asText().equals(want)) {
                    throw new dev.dreamcluster.config.ConfigError(label + " at " + k + ": " + n.get(k)
                            + " is not supported (DreamCluster implements only " + want + ")");
                }
            }
        }
        return new VaeConfig(n.path("in_channels").asInt(3), n.path("out_channels").asInt(3),
                n.path("latent_channels").asInt(4), UNetConfig.ints(n.path("block_out_channels")),
                n.path("layers_per_block").asInt(2), n.path("norm_num_groups").asInt(32), n.path("sample_size").asInt(512),
                n.path("scaling_factor").asDouble(0.18215));
    }

    public ObjectNode toJson() {
        ObjectNode n = Json.MAPPER.createObjectNode();
        n.put("_class_name", "AutoencoderKL");
        n.put("_diffusers_version", "0.21.4");
        n.put("act_fn", "silu");
        ArrayNode b = n.putArray("block_out_channels");
        blockOutChannels.forEach(b::add);
        ArrayNode d = n.putArray("down_block_types");
        blockOutChannels.forEach(x -> d.add("DownEncoderBlock2D"));
        n.put("in_channels", inChannels);
        n.put("latent_channels", latentChannels);
        n.put("layers_per_block", layersPerBlock);
        n.put("norm_num_groups", normNumGroups);
        n.put("out_channels", outChannels);
        n.put("sample_size", sampleSize);
        n.put("scaling_factor", scalingFactor);
        ArrayNode u = n.putArray("up_block_types");
        blockOutChannels.forEach(x -> u.add("UpDecoderBlock2D"));
        return n;
    }
}
