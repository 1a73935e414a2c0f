package dev.dreamcluster.model.ldm;

import dev.dreamcluster.freeze.Component;
import dev.dreamcluster.model.DiffusersFolder;
import dev.dreamcluster.model.ParamSpec;
import dev.dreamcluster.model.UNetConfig;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The diffusers-to-LDM name and shape mapping of one model, derived from its configs (the facts of
 * diffusers' scripts/convert_diffusers_to_original_stable_diffusion.py, generalised to any
 * layers_per_block and block count so the tiny preset maps too):
 *
 * <pre>
 *   UNet  model.diffusion_model.:  time_embed.{0,2}, input_blocks.{1 + i(L+1) + j}.{0 resnet, 1 attention},
 *         input_blocks.{(i+1)(L+1)}.0.op, middle_block.{0,1,2}, output_blocks.{i(L+1) + j}.{0,1},
 *         upsampler output_blocks.{i(L+1) + L}.{1 or 2}.conv, out.{0,2}; resnets in_layers.{0,2},
 *         emb_layers.1, out_layers.{0,3}, skip_connection; transformer internals unchanged
 *   VAE   first_stage_model.: {encoder,decoder}.{down.i | up.(n-1-i)}.block.j, downsample/upsample.conv,
 *         mid.block_{1,2}, mid.attn_1.{norm,q,k,v,proj_out} (1x1 convs [c, c, 1, 1]), norm_out, nin_shortcut
 *   CLIP  SD1 (quick_gelu): cond_stage_model.transformer.text_model.* (transformers names)
 *         SD2 (gelu, OpenCLIP): cond_stage_model.model.{token_embedding.weight, positional_embedding,
 *         transformer.resblocks.k.{ln_1, attn.in_proj_{weight,bias} (q, k, v stacked), attn.out_proj,
 *         ln_2, mlp.c_fc, mlp.c_proj}, ln_final}
 * </pre>
 */
public final class LdmLayout {
    public static final String UNET = "model.diffusion_model.";
    public static final String VAE = "first_stage_model.";
    public static final String CLIP_SD1 = "cond_stage_model.transformer.";
    public static final String CLIP_SD2 = "cond_stage_model.model.";

    /** How a diffusers tensor sits in the LDM file. */
    public enum Kind {
        /** same values, same shape */
        COPY,
        /** a [c, c] linear stored as a 1x1 conv [c, c, 1, 1] */
        CONV_1X1,
        /** rows [part * h, (part + 1) * h) of OpenCLIP's fused in_proj (q = 0, k = 1, v = 2) */
        QKV_PART
    }

    /**
     * @param ldmShape the shape of the whole LDM tensor (for QKV_PART, the fused [3h, ...] one)
     */
    public record Entry(Component component, ParamSpec diffusers, String ldmName, long[] ldmShape, Kind kind, int part) {}

    private LdmLayout() {}

    /** Whether this model's text encoder is written in SD2's OpenCLIP layout (its activation is gelu). */
    public static boolean openClip(DiffusersFolder model) {
        return model.textEncoder().hiddenAct().equals("gelu");
    }

    /** Every tensor of the model (UNet, text encoder, VAE in manifest order) with its LDM place. */
    public static List<Entry> entries(DiffusersFolder model) {
        List<Entry> out = new ArrayList<>();
        for (ParamSpec p : model.manifest(Component.UNET)) {
            out.add(new Entry(Component.UNET, p, UNET + unetName(p.name(), model.unet()), p.shape(), Kind.COPY, 0));
        }
        boolean sd2 = openClip(model);
        int h = model.textEncoder().hiddenSize();
        for (ParamSpec p : model.manifest(Component.TEXT_ENCODER)) {
            if (!sd2) {
                out.add(new Entry(Component.TEXT_ENCODER, p, CLIP_SD1 + p.name(), p.shape(), Kind.COPY, 0));
                continue;
            }
            Matcher qkv = QKV.matcher(p.name());
            if (qkv.matches()) {
                int part = "qkv".indexOf(qkv.group(2));
                long[] s = p.shape();
                s[0] = 3L * h;
                String kind = qkv.group(3);
                out.add(new Entry(Component.TEXT_ENCODER, p, CLIP_SD2 + "transformer.resblocks." + qkv.group(1) + ".attn.in_proj_" + kind, s,
                        Kind.QKV_PART, part));
            } else {
                out.add(new Entry(Component.TEXT_ENCODER, p, CLIP_SD2 + openClipName(p.name()), p.shape(), Kind.COPY, 0));
            }
        }
        int n = model.vae().blockOutChannels().size();
        for (ParamSpec p : model.manifest(Component.VAE)) {
            String name = vaeName(p.name(), n);
            boolean conv = p.name().contains(".attentions.0.to_") && p.shape().length == 2;
            long[] s = conv ? new long[] {p.shape()[0], p.shape()[1], 1, 1} : p.shape();
            out.add(new Entry(Component.VAE, p, VAE + name, s, conv ? Kind.CONV_1X1 : Kind.COPY, 0));
        }
        return out;
    }

    private static final Pattern QKV = Pattern.compile("text_model\\.encoder\\.layers\\.(\\d+)\\.self_attn\\.([qkv])_proj\\.(weight|bias)");
    private static final Pattern DOWN_RES = Pattern.compile("down_blocks\\.(\\d+)\\.resnets\\.(\\d+)\\.(.*)");
    private static final Pattern DOWN_ATT = Pattern.compile("down_blocks\\.(\\d+)\\.attentions\\.(\\d+)\\.(.*)");
    private static final Pattern DOWN_SAMPLE = Pattern.compile("down_blocks\\.(\\d+)\\.downsamplers\\.0\\.conv\\.(.*)");
    private static final Pattern UP_RES = Pattern.compile("up_blocks\\.(\\d+)\\.resnets\\.(\\d+)\\.(.*)");
    private static final Pattern UP_ATT = Pattern.compile("up_blocks\\.(\\d+)\\.attentions\\.(\\d+)\\.(.*)");
    private static final Pattern UP_SAMPLE = Pattern.compile("up_blocks\\.(\\d+)\\.upsamplers\\.0\\.conv\\.(.*)");
    private static final Pattern MID_RES = Pattern.compile("mid_block\\.resnets\\.(\\d+)\\.(.*)");

    static String unetName(String d, UNetConfig c) {
        int l = c.layersPerBlock();
        Matcher m;
        if (d.startsWith("time_embedding.linear_1.")) {
            return "time_embed.0." + tail(d);
        }
        if (d.startsWith("time_embedding.linear_2.")) {
            return "time_embed.2." + tail(d);
        }
        if (d.startsWith("conv_in.")) {
            return "input_blocks.0.0." + tail(d);
        }
        if (d.startsWith("conv_norm_out.")) {
            return "out.0." + tail(d);
        }
        if (d.startsWith("conv_out.")) {
            return "out.2." + tail(d);
        }
        if ((m = DOWN_RES.matcher(d)).matches()) {
            return "input_blocks." + (1 + num(m, 1) * (l + 1) + num(m, 2)) + ".0." + resnet(m.group(3));
        }
        if ((m = DOWN_ATT.matcher(d)).matches()) {
            return "input_blocks." + (1 + num(m, 1) * (l + 1) + num(m, 2)) + ".1." + m.group(3);
        }
        if ((m = DOWN_SAMPLE.matcher(d)).matches()) {
            return "input_blocks." + ((num(m, 1) + 1) * (l + 1)) + ".0.op." + m.group(2);
        }
        if ((m = MID_RES.matcher(d)).matches()) {
            return "middle_block." + (2 * num(m, 1)) + "." + resnet(m.group(2));
        }
        if (d.startsWith("mid_block.attentions.0.")) {
            return "middle_block.1." + d.substring("mid_block.attentions.0.".length());
        }
        if ((m = UP_RES.matcher(d)).matches()) {
            return "output_blocks." + (num(m, 1) * (l + 1) + num(m, 2)) + ".0." + resnet(m.group(3));
        }
        if ((m = UP_ATT.matcher(d)).matches()) {
            return "output_blocks." + (num(m, 1) * (l + 1) + num(m, 2)) + ".1." + m.group(3);
        }
        if ((m = UP_SAMPLE.matcher(d)).matches()) {
            int i = num(m, 1);
            boolean attention = c.upBlockTypes().get(i).equals("CrossAttnUpBlock2D");
            return "output_blocks." + (i * (l + 1) + l) + "." + (attention ? 2 : 1) + ".conv." + m.group(2);
        }
        throw new IllegalArgumentException("no LDM name for UNet tensor " + d);
    }

    private static String resnet(String rest) {
        return rest.replace("norm1.", "in_layers.0.").replace("conv1.", "in_layers.2.").replace("time_emb_proj.", "emb_layers.1.")
                .replace("norm2.", "out_layers.0.").replace("conv2.", "out_layers.3.").replace("conv_shortcut.", "skip_connection.");
    }

    private static final Pattern ENC_RES = Pattern.compile("encoder\\.down_blocks\\.(\\d+)\\.resnets\\.(\\d+)\\.(.*)");
    private static final Pattern ENC_DOWN = Pattern.compile("encoder\\.down_blocks\\.(\\d+)\\.downsamplers\\.0\\.(.*)");
    private static final Pattern DEC_RES = Pattern.compile("decoder\\.up_blocks\\.(\\d+)\\.resnets\\.(\\d+)\\.(.*)");
    private static final Pattern DEC_UP = Pattern.compile("decoder\\.up_blocks\\.(\\d+)\\.upsamplers\\.0\\.(.*)");
    private static final Pattern VAE_MID_RES = Pattern.compile("(encoder|decoder)\\.mid_block\\.resnets\\.(\\d+)\\.(.*)");
    private static final Pattern VAE_MID_ATT = Pattern.compile("(encoder|decoder)\\.mid_block\\.attentions\\.0\\.(.*)");

    static String vaeName(String d, int blocks) {
        Matcher m;
        if ((m = ENC_RES.matcher(d)).matches()) {
            return "encoder.down." + m.group(1) + ".block." + m.group(2) + "." + shortcut(m.group(3));
        }
        if ((m = ENC_DOWN.matcher(d)).matches()) {
            return "encoder.down." + m.group(1) + ".downsample." + m.group(2);
        }
        if ((m = DEC_RES.matcher(d)).matches()) {
            return "decoder.up." + (blocks - 1 - num(m, 1)) + ".block." + m.group(2) + "." + shortcut(m.group(3));
        }
        if ((m = DEC_UP.matcher(d)).matches()) {
            return "decoder.up." + (blocks - 1 - num(m, 1)) + ".upsample." + m.group(2);
        }
        if ((m = VAE_MID_RES.matcher(d)).matches()) {
            return m.group(1) + ".mid.block_" + (num(m, 2) + 1) + "." + shortcut(m.group(3));
        }
        if ((m = VAE_MID_ATT.matcher(d)).matches()) {
            String rest = m.group(2).replace("group_norm.", "norm.").replace("to_q.", "q.").replace("to_k.", "k.")
                    .replace("to_v.", "v.").replace("to_out.0.", "proj_out.");
            return m.group(1) + ".mid.attn_1." + rest;
        }
        return d.replace("conv_norm_out.", "norm_out."); // conv_in, conv_out, quant_conv, post_quant_conv keep their names
    }

    private static String shortcut(String rest) {
        return rest.replace("conv_shortcut.", "nin_shortcut.");
    }

    private static final Pattern TE_LAYER = Pattern.compile("text_model\\.encoder\\.layers\\.(\\d+)\\.(.*)");

    static String openClipName(String d) {
        switch (d) {
            case "text_model.embeddings.token_embedding.weight":
                return "token_embedding.weight";
            case "text_model.embeddings.position_embedding.weight":
                return "positional_embedding";
            default:
                break;
        }
        if (d.startsWith("text_model.final_layer_norm.")) {
            return "ln_final." + tail(d);
        }
        Matcher m = TE_LAYER.matcher(d);
        if (m.matches()) {
            String rest = m.group(2).replace("layer_norm1.", "ln_1.").replace("layer_norm2.", "ln_2.")
                    .replace("self_attn.out_proj.", "attn.out_proj.").replace("mlp.fc1.", "mlp.c_fc.").replace("mlp.fc2.", "mlp.c_proj.");
            return "transformer.resblocks." + m.group(1) + "." + rest;
        }
        throw new IllegalArgumentException("no OpenCLIP name for text encoder tensor " + d);
    }

    private static String tail(String d) {
        return d.substring(d.lastIndexOf('.') + 1);
    }

    private static int num(Matcher m, int g) {
        return Integer.parseInt(m.group(g));
    }
}
