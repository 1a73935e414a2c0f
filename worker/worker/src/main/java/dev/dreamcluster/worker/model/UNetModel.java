package dev.dreamcluster.worker.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.Shape;
import dev.dreamcluster.model.UNetConfig;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Deque;
import java.util.List;

/**
 * diffusers' UNet2DConditionModel (SD 1.x/2.x): sinusoidal timestep embedding, down blocks with
 * skip connections, a cross-attention mid block, up blocks, and the output head. Predicts the noise
 * (or v) for latents [B, 4, h, w] at timesteps [B] given text states [B, 77, cross_attention_dim].
 */
public final class UNetModel {
    /** GroupNorm eps inside Transformer2DModel (diffusers hard-codes 1e-6 there). */
    static final float TRANSFORMER_NORM_EPS = 1e-6f;
    static final float LAYER_NORM_EPS = 1e-5f;

    private final UNetConfig c;
    private final ModelWeights w;
    private final float eps;
    private final Ops ops;

    public UNetModel(UNetConfig config, ModelWeights weights, Ops ops) {
        this.c = config;
        this.w = weights;
        this.ops = ops;
        this.eps = (float) config.normEps();
    }

    /**
     * @param timesteps one integer timestep per sample
     */
    public NDArray forward(NDArray sample, int[] timesteps, NDArray context) {
        float[] t = new float[timesteps.length];
        for (int i = 0; i < t.length; i++) {
            t[i] = timesteps[i];
        }
        return forward(sample, t, context);
    }

    /** The same with fractional timesteps (Euler sampling), embedded as diffusers embeds float timesteps. */
    public NDArray forward(NDArray sample, float[] timesteps, NDArray context) {
        List<Integer> boc = c.blockOutChannels();
        int n = boc.size();
        NDArray tEmb = Tensors.like(Tensors.of(sample.getManager(), timestepEmbedding(timesteps, boc.get(0), c.flipSinToCos(),
                c.freqShift()), new Shape(timesteps.length, boc.get(0))), sample);
        NDArray emb = ops.linear(tEmb, w.get("time_embedding.linear_1.weight"), w.get("time_embedding.linear_1.bias"));
        emb = ops.linear(ops.silu(emb), w.get("time_embedding.linear_2.weight"), w.get("time_embedding.linear_2.bias"));
        NDArray embAct = ops.silu(emb); // every resnet's time_emb_proj reads silu(emb)

        NDArray h = ops.conv(sample, w.get("conv_in.weight"), w.get("conv_in.bias"), 1, 1);
        Deque<NDArray> skips = new ArrayDeque<>();
        skips.push(h);
        for (int i = 0; i < n; i++) {
            String p = "down_blocks." + i;
            boolean cross = c.downBlockTypes().get(i).equals("CrossAttnDownBlock2D");
            for (int j = 0; j < c.layersPerBlock(); j++) {
                h = resnet(p + ".resnets." + j, h, embAct);
                if (cross) {
                    h = transformer(p + ".attentions." + j, h, context, c.attentionHeadDim().get(i));
                }
                skips.push(h);
            }
            if (i < n - 1) {
                h = ops.conv(h, w.get(p + ".downsamplers.0.conv.weight"), w.get(p + ".downsamplers.0.conv.bias"), 2, 1);
                skips.push(h);
            }
        }
        h = resnet("mid_block.resnets.0", h, embAct);
        h = transformer("mid_block.attentions.0", h, context, c.attentionHeadDim().get(n - 1));
        h = resnet("mid_block.resnets.1", h, embAct);
        List<Integer> heads = new ArrayList<>(c.attentionHeadDim());
        Collections.reverse(heads);
        for (int i = 0; i < n; i++) {
            String p = "up_blocks." + i;
            boolean cross = c.upBlockTypes().get(i).equals("CrossAttnUpBlock2D");
            for (int j = 0; j <= c.layersPerBlock(); j++) {
                h = NDArrays.concat(new NDList(h, skips.pop()), 1);
                h = resnet(p + ".resnets." + j, h, embAct);
                if (cross) {
                    h = transformer(p + ".attentions." + j, h, context, heads.get(i));
                }
            }
            if (i < n - 1) {
                h = ops.conv(ops.upsample2x(h), w.get(p + ".upsamplers.0.conv.weight"), w.get(p + ".upsamplers.0.conv.bias"), 1, 1);
            }
        }
        h = ops.silu(ops.groupNorm(h, c.normNumGroups(), w.get("conv_norm_out.weight"), w.get("conv_norm_out.bias"), eps));
        return ops.conv(h, w.get("conv_out.weight"), w.get("conv_out.bias"), 1, 1);
    }

    private NDArray resnet(String p, NDArray x, NDArray embAct) {
        int groups = c.normNumGroups();
        NDArray h = ops.silu(ops.groupNorm(x, groups, w.get(p + ".norm1.weight"), w.get(p + ".norm1.bias"), eps));
        h = ops.conv(h, w.get(p + ".conv1.weight"), w.get(p + ".conv1.bias"), 1, 1);
        NDArray t = ops.linear(embAct, w.get(p + ".time_emb_proj.weight"), w.get(p + ".time_emb_proj.bias"));
        h = h.add(t.expandDims(2).expandDims(3));
        h = ops.silu(ops.groupNorm(h, groups, w.get(p + ".norm2.weight"), w.get(p + ".norm2.bias"), eps));
        h = ops.conv(h, w.get(p + ".conv2.weight"), w.get(p + ".conv2.bias"), 1, 1);
        NDArray shortcut = w.opt(p + ".conv_shortcut.weight") == null ? x
                : ops.conv(x, w.get(p + ".conv_shortcut.weight"), w.get(p + ".conv_shortcut.bias"), 1, 0);
        return shortcut.add(h);
    }

    /** Transformer2DModel with one BasicTransformerBlock: self-attention, cross-attention, GEGLU. */
    private NDArray transformer(String p, NDArray x, NDArray context, int heads) {
        Shape s = x.getShape();
        long b = s.get(0);
        long ch = s.get(1);
        long hh = s.get(2);
        long ww = s.get(3);
        NDArray h = ops.groupNorm(x, c.normNumGroups(), w.get(p + ".norm.weight"), w.get(p + ".norm.bias"), TRANSFORMER_NORM_EPS);
        if (c.useLinearProjection()) {
            h = h.transpose(0, 2, 3, 1).reshape(b, hh * ww, ch);
            h = ops.linear(h, w.get(p + ".proj_in.weight"), w.get(p + ".proj_in.bias"));
        } else {
            h = ops.conv(h, w.get(p + ".proj_in.weight"), w.get(p + ".proj_in.bias"), 1, 0);
            h = h.transpose(0, 2, 3, 1).reshape(b, hh * ww, ch);
        }
        String t = p + ".transformer_blocks.0.";
        NDArray x1 = ops.layerNorm(h, w.get(t + "norm1.weight"), w.get(t + "norm1.bias"), LAYER_NORM_EPS);
        h = h.add(attention(t + "attn1.", x1, x1, heads));
        NDArray x2 = ops.layerNorm(h, w.get(t + "norm2.weight"), w.get(t + "norm2.bias"), LAYER_NORM_EPS);
        h = h.add(attention(t + "attn2.", x2, context, heads));
        NDArray x3 = ops.layerNorm(h, w.get(t + "norm3.weight"), w.get(t + "norm3.bias"), LAYER_NORM_EPS);
        NDArray proj = ops.linear(x3, w.get(t + "ff.net.0.proj.weight"), w.get(t + "ff.net.0.proj.bias"));
        NDArray ff = ops.linear(ops.geglu(proj), w.get(t + "ff.net.2.weight"), w.get(t + "ff.net.2.bias"));
        h = h.add(ff);
        if (c.useLinearProjection()) {
            h = ops.linear(h, w.get(p + ".proj_out.weight"), w.get(p + ".proj_out.bias"));
            h = h.reshape(b, hh, ww, ch).transpose(0, 3, 1, 2);
        } else {
            h = h.reshape(b, hh, ww, ch).transpose(0, 3, 1, 2);
            h = ops.conv(h, w.get(p + ".proj_out.weight"), w.get(p + ".proj_out.bias"), 1, 0);
        }
        return h.add(x);
    }

    private NDArray attention(String p, NDArray x, NDArray context, int heads) {
        NDArray q = ops.linear(x, w.get(p + "to_q.weight"), null);
        NDArray k = ops.linear(context, w.get(p + "to_k.weight"), null);
        NDArray v = ops.linear(context, w.get(p + "to_v.weight"), null);
        return ops.linear(ops.attention(q, k, v, heads, null), w.get(p + "to_out.0.weight"), w.get(p + "to_out.0.bias"));
    }

    /**
     * diffusers' get_timestep_embedding: frequencies exp(-ln(10000) * i / (half - shift)), then
     * [sin, cos] (or [cos, sin] with flip_sin_to_cos), computed in float32 as diffusers does.
     */
    static float[] timestepEmbedding(float[] timesteps, int dim, boolean flipSinToCos, int freqShift) {
        int half = dim / 2;
        float[] out = new float[timesteps.length * dim];
        for (int b = 0; b < timesteps.length; b++) {
            for (int i = 0; i < half; i++) {
                float exponent = (float) (-Math.log(10000)) * (float) i / (float) (half - freqShift);
                float arg = timesteps[b] * (float) Math.exp(exponent);
                float sin = (float) Math.sin(arg);
                float cos = (float) Math.cos(arg);
                out[b * dim + i] = flipSinToCos ? cos : sin;
                out[b * dim + half + i] = flipSinToCos ? sin : cos;
            }
        }
        return out;
    }
}
