package dev.dreamcluster.model;

import com.fasterxml.jackson.databind.JsonNode;
import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.config.Json;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The diffusers config keys of UNet2DConditionModel and AutoencoderKL that DreamCluster does not
 * implement, with the values it computes exactly (the diffusers defaults, or values it treats the
 * same way). Any other value of such a key is refused naming the file and the key, so a model is
 * never loaded as something else. Keys the configs read are checked by them; keys listed as
 * inert change nothing in fp32 training (upcast_attention and force_upcast only matter in fp16, and
 * DreamCluster's attention already runs in fp32); unknown keys are refused unless null.
 */
final class ModelConfigKeys {
    private ModelConfigKeys() {}

    static final Set<String> UNET_READ = Set.of("in_channels", "out_channels", "sample_size", "block_out_channels",
            "layers_per_block", "down_block_types", "up_block_types", "attention_head_dim", "num_attention_heads",
            "cross_attention_dim", "use_linear_projection", "norm_num_groups", "norm_eps", "flip_sin_to_cos", "freq_shift");
    static final Set<String> UNET_INERT = Set.of("upcast_attention", "dropout");
    static final Map<String, List<Object>> UNET_FIXED = fixed(
            "center_input_sample", false, "mid_block_scale_factor", 1, "downsample_padding", 1, "act_fn", "silu",
            "mid_block_type", "UNetMidBlock2DCrossAttn", "only_cross_attention", false, "dual_cross_attention", false,
            "transformer_layers_per_block", 1, "reverse_transformer_layers_per_block", null, "encoder_hid_dim", null,
            "encoder_hid_dim_type", null, "class_embed_type", null, "addition_embed_type", null,
            "addition_time_embed_dim", null, "num_class_embeds", null, "resnet_time_scale_shift", "default",
            "resnet_skip_time_act", false, "resnet_out_scale_factor", 1, "time_embedding_type", "positional",
            "time_embedding_dim", null, "time_embedding_act_fn", null, "timestep_post_act", null,
            "time_cond_proj_dim", null, "conv_in_kernel", 3, "conv_out_kernel", 3,
            "projection_class_embeddings_input_dim", null, "attention_type", "default", "class_embeddings_concat", false,
            "mid_block_only_cross_attention", null, "cross_attention_norm", null, "addition_embed_type_num_heads", 64);

    static final Set<String> VAE_READ = Set.of("in_channels", "out_channels", "latent_channels", "block_out_channels",
            "layers_per_block", "norm_num_groups", "sample_size", "scaling_factor", "down_block_types", "up_block_types");
    static final Set<String> VAE_INERT = Set.of("force_upcast");
    static final Map<String, List<Object>> VAE_FIXED = fixed("act_fn", "silu", "shift_factor", null, "latents_mean", null,
            "latents_std", null, "use_quant_conv", true, "use_post_quant_conv", true, "mid_block_add_attention", true);

    private static Map<String, List<Object>> fixed(Object... kv) {
        Map<String, List<Object>> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            m.put((String) kv[i], java.util.Collections.singletonList(kv[i + 1]));
        }
        return m;
    }

    /** Refuses, naming {@code label} and the key, any value DreamCluster would compute differently. */
    static void check(JsonNode n, String label, Set<String> read, Set<String> inert, Map<String, List<Object>> fixed) {
        for (Iterator<Map.Entry<String, JsonNode>> it = n.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            String k = e.getKey();
            JsonNode v = e.getValue();
            if (k.startsWith("_") || read.contains(k) || inert.contains(k)) {
                continue;
            }
            List<Object> ok = fixed.get(k);
            if (ok == null) {
                if (!v.isNull()) {
                    throw new ConfigError(label + " at " + k + ": " + v + " is not supported (DreamCluster does not implement"
                            + " this key; allowed: null or absent)");
                }
                continue;
            }
            if (!matches(v, ok.get(0))) {
                throw new ConfigError(label + " at " + k + ": " + v + " is not supported (DreamCluster implements only "
                        + Json.MAPPER.valueToTree(ok.get(0)) + ")");
            }
        }
    }

    /** Equal to the default, also when a per-block list repeats it (only_cross_attention: [false, ...]). */
    private static boolean matches(JsonNode v, Object want) {
        if (want == null) {
            return v.isNull();
        }
        if (v.isArray()) {
            for (JsonNode x : v) {
                if (!matches(x, want)) {
                    return false;
                }
            }
            return !v.isEmpty();
        }
        if (want instanceof Number w) {
            return v.isNumber() && v.doubleValue() == w.doubleValue();
        }
        return Json.MAPPER.valueToTree(want).equals(v);
    }
}
