package dev.dreamcluster.model;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * The parameter names and shapes of each Stable Diffusion component, derived from its config alone
 * (no weights), in diffusers / transformers module-registration order (the order of their
 * state_dict). Buffers such as {@code position_ids} are not parameters and are not listed.
 */
public final class ParamManifest {
    private final List<ParamSpec> out = new ArrayList<>();

    private ParamManifest() {}

    // ---- UNet2DConditionModel ----

    public static List<ParamSpec> unet(UNetConfig c) {
        ParamManifest m = new ParamManifest();
        List<Integer> boc = c.blockOutChannels();
        int n = boc.size();
        int temb = c.timeEmbedDim();
        m.conv("conv_in", boc.get(0), c.inChannels(), 3);
        m.linear("time_embedding.linear_1", temb, boc.get(0), true);
        m.linear("time_embedding.linear_2", temb, temb, true);
        int output = boc.get(0);
        for (int i = 0; i < n; i++) {
            int input = output;
            output = boc.get(i);
            String p = "down_blocks." + i;
            if (c.downBlockTypes().get(i).equals("CrossAttnDownBlock2D")) {
                for (int j = 0; j < c.layersPerBlock(); j++) {
                    m.transformer(p + ".attentions." + j, output, c.crossAttentionDim(), c.useLinearProjection());
                }
            }
            for (int j = 0; j < c.layersPerBlock(); j++) {
                m.resnet(p + ".resnets." + j, j == 0 ? input : output, output, temb);
            }
            if (i < n - 1) {
                m.conv(p + ".downsamplers.0.conv", output, output, 3);
            }
        }
        List<Integer> rev = new ArrayList<>(boc);
        Collections.reverse(rev);
        output = rev.get(0);
        for (int i = 0; i < n; i++) {
            int prev = output;
            output = rev.get(i);
            int input = rev.get(Math.min(i + 1, n - 1));
            int layers = c.layersPerBlock() + 1;
            String p = "up_blocks." + i;
            if (c.upBlockTypes().get(i).equals("CrossAttnUpBlock2D")) {
                for (int j = 0; j < layers; j++) {
                    m.transformer(p + ".attentions." + j, output, c.crossAttentionDim(), c.useLinearProjection());
                }
            }
            for (int j = 0; j < layers; j++) {
                int skip = j == layers - 1 ? input : output;
                int resIn = j == 0 ? prev : output;
                m.resnet(p + ".resnets." + j, resIn + skip, output, temb);
            }
            if (i < n - 1) {
                m.conv(p + ".upsamplers.0.conv", output, output, 3);
            }
        }
        int mid = boc.get(n - 1);
        m.transformer("mid_block.attentions.0", mid, c.crossAttentionDim(), c.useLinearProjection());
        m.resnet("mid_block.resnets.0", mid, mid, temb);
        m.resnet("mid_block.resnets.1", mid, mid, temb);
        m.norm("conv_norm_out", boc.get(0));
        m.conv("conv_out", c.outChannels(), boc.get(0), 3);
        return List.copyOf(m.out);
    }

    /** ResnetBlock2D: norm1, conv1, time_emb_proj (temb > 0), norm2, conv2, conv_shortcut (in != out). */
    private void resnet(String p, int in, int out, int temb) {
        norm(p + ".norm1", in);
        conv(p + ".conv1", out, in, 3);
        if (temb > 0) {
            linear(p + ".time_emb_proj", out, temb, true);
        }
        norm(p + ".norm2", out);
        conv(p + ".conv2", out, out, 3);
        if (in != out) {
            conv(p + ".conv_shortcut", out, in, 1);
        }
    }

    /** Transformer2DModel with one BasicTransformerBlock (self-attention, cross-attention, GEGLU FF). */
    private void transformer(String p, int ch, int crossDim, boolean linearProjection) {
        norm(p + ".norm", ch);
        if (linearProjection) {
            linear(p + ".proj_in", ch, ch, true);
        } else {
            conv(p + ".proj_in", ch, ch, 1);
        }
        String b = p + ".transformer_blocks.0";
        norm(b + ".norm1", ch);
        attention(b + ".attn1", ch, ch);
        norm(b + ".norm2", ch);
        attention(b + ".attn2", ch, crossDim);
        norm(b + ".norm3", ch);
        linear(b + ".ff.net.0.proj", ch * 8, ch, true);
        linear(b + ".ff.net.2", ch, ch * 4, true);
        if (linearProjection) {
            linear(p + ".proj_out", ch, ch, true);
        } else {
            conv(p + ".proj_out", ch, ch, 1);
        }
    }

    private void attention(String p, int ch, int kvDim) {
        linear(p + ".to_q", ch, ch, false);
        linear(p + ".to_k", ch, kvDim, false);
        linear(p + ".to_v", ch, kvDim, false);
        linear(p + ".to_out.0", ch, ch, true);
    }

    // ---- CLIPTextModel ----

    public static List<ParamSpec> textEncoder(ClipTextConfig c) {
        ParamManifest m = new ParamManifest();
        int h = c.hiddenSize();
        m.add("text_model.embeddings.token_embedding.weight", c.vocabSize(), h);
        m.add("text_model.embeddings.position_embedding.weight", c.maxPositionEmbeddings(), h);
        for (int i = 0; i < c.numHiddenLayers(); i++) {
            String p = "text_model.encoder.layers." + i;
            m.linear(p + ".self_attn.k_proj", h, h, true);
            m.linear(p + ".self_attn.v_proj", h, h, true);
            m.linear(p + ".self_attn.q_proj", h, h, true);
            m.linear(p + ".self_attn.out_proj", h, h, true);
            m.norm(p + ".layer_norm1", h);
            m.linear(p + ".mlp.fc1", c.intermediateSize(), h, true);
            m.linear(p + ".mlp.fc2", h, c.intermediateSize(), true);
            m.norm(p + ".layer_norm2", h);
        }
        m.norm("text_model.final_layer_norm", h);
        return List.copyOf(m.out);
    }

    // ---- AutoencoderKL ----

    public static List<ParamSpec> vae(VaeConfig c) {
        ParamManifest m = new ParamManifest();
        List<Integer> boc = c.blockOutChannels();
        int n = boc.size();
        int top = boc.get(n - 1);
        int lpb = c.layersPerBlock();
        m.conv("encoder.conv_in", boc.get(0), c.inChannels(), 3);
        int output = boc.get(0);
        for (int i = 0; i < n; i++) {
            int input = output;
            output = boc.get(i);
            for (int j = 0; j < lpb; j++) {
                m.resnet("encoder.down_blocks." + i + ".resnets." + j, j == 0 ? input : output, output, 0);
            }
            if (i < n - 1) {
                m.conv("encoder.down_blocks." + i + ".downsamplers.0.conv", output, output, 3);
            }
        }
        m.vaeMid("encoder.mid_block", top);
        m.norm("encoder.conv_norm_out", top);
        m.conv("encoder.conv_out", 2 * c.latentChannels(), top, 3);

        m.conv("decoder.conv_in", top, c.latentChannels(), 3);
        output = top;
        for (int i = 0; i < n; i++) {
            int prev = output;
            output = boc.get(n - 1 - i);
            for (int j = 0; j <= lpb; j++) {
                m.resnet("decoder.up_blocks." + i + ".resnets." + j, j == 0 ? prev : output, output, 0);
            }
            if (i < n - 1) {
                m.conv("decoder.up_blocks." + i + ".upsamplers.0.conv", output, output, 3);
            }
        }
        m.vaeMid("decoder.mid_block", top);
        m.norm("decoder.conv_norm_out", boc.get(0));
        m.conv("decoder.conv_out", c.outChannels(), boc.get(0), 3);
        m.conv("quant_conv", 2 * c.latentChannels(), 2 * c.latentChannels(), 1);
        m.conv("post_quant_conv", c.latentChannels(), c.latentChannels(), 1);
        return List.copyOf(m.out);
    }

    /** UNetMidBlock2D of the VAE: one single-head attention with group norm, two resnets. */
    private void vaeMid(String p, int ch) {
        norm(p + ".attentions.0.group_norm", ch);
        linear(p + ".attentions.0.to_q", ch, ch, true);
        linear(p + ".attentions.0.to_k", ch, ch, true);
        linear(p + ".attentions.0.to_v", ch, ch, true);
        linear(p + ".attentions.0.to_out.0", ch, ch, true);
        resnet(p + ".resnets.0", ch, ch, 0);
        resnet(p + ".resnets.1", ch, ch, 0);
    }

    // ---- primitives ----

    private void conv(String p, int out, int in, int k) {
        add(p + ".weight", out, in, k, k);
        add(p + ".bias", out);
    }

    private void linear(String p, int out, int in, boolean bias) {
        add(p + ".weight", out, in);
        if (bias) {
            add(p + ".bias", out);
        }
    }

    /** GroupNorm or LayerNorm: an affine weight and bias per channel. */
    private void norm(String p, int ch) {
        add(p + ".weight", ch);
        add(p + ".bias", ch);
    }

    private void add(String name, long... shape) {
        out.add(new ParamSpec(name, shape));
    }

    /** Total elements of a manifest. */
    public static long count(List<ParamSpec> specs) {
        long n = 0;
        for (ParamSpec s : specs) {
            n += s.numel();
        }
        return n;
    }
}
