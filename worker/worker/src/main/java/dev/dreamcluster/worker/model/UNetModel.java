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
        return forward(sample, timesteps, context, Recompute.DIRECT);
    }

    /**
     * The training forward through {@code rc} ({@link Ops#recompute()}): with a recording session
     * (gradient checkpointing) every block keeps only its input and is recomputed in {@code rc}'s
     * backward, and the prediction is a leaf that the loss is built from; with {@link
     * Recompute#DIRECT} the plain forward. {@code context} may carry the text encoder's graph (or be
     * its checkpointed output): its gradient reaches the text encoder in either case.
     */
    public NDArray forward(NDArray sample, int[] timesteps, NDArray context, Recompute rc) {
        float[] t = new float[timesteps.length];
        for (int i = 0; i < t.length; i++) {
            t[i] = timesteps[i];
        }
        return forward(sample, t, context, rc);
    }

    /** The same with fractional timesteps (Euler sampling), embedded as diffusers embeds float timesteps. */
    public NDArray forward(NDArray sample, float[] timesteps, NDArray context) {
        return forward(sample, timesteps, context, Recompute.DIRECT);
    }

    /**
     * The forward as segments of {@code rc}: the time embedding, conv_in, each resnet, each
     * transformer, each down/upsampler and the output head. A skip connection is the value of the
     * segment that produced it, read again by an up block's resnet; the time embedding is read by
     * every resnet and the context by every transformer (their gradients are summed over readers).
     */
    public NDArray forward(NDArray sample, float[] timesteps, NDArray context, Recompute rc) {
        if (!rc.recording()) { // the block outputs autograd does not keep are freed when the forward returns
            return Recompute.DIRECT.run((r, in) -> blocks(in.get(0), timesteps, in.get(1), r), sample, context);
        }
        return blocks(sample, timesteps, context, rc);
    }

    private NDArray blocks(NDArray sample, float[] timesteps, NDArray context, Recompute rc) {
        List<Integer> boc = c.blockOutChannels();
        int n = boc.size();
        NDArray tEmb = rc.constant(Tensors.like(Tensors.of(sample.getManager(), timestepEmbedding(timesteps, boc.get(0), c.flipSinToCos(),
                c.freqShift()), new Shape(timesteps.length, boc.get(0))), sample));
        NDArray embAct = rc.run((r, in) -> timeEmbedding(in.get(0)), tEmb); // every resnet's time_emb_proj reads silu(emb)

        NDArray h = rc.run((r, in) -> ops.conv(in.get(0), w.get("conv_in.weight"), w.get("conv_in.bias"), 1, 1), sample);
        Deque<NDArray> skips = new ArrayDeque<>();
        skips.push(h);
        for (int i = 0; i < n; i++) {
            String p = "down_blocks." + i;
            boolean cross = c.downBlockTypes().get(i).equals("CrossAttnDownBlock2D");
            int heads = c.attentionHeadDim().get(i);
            for (int j = 0; j < c.layersPerBlock(); j++) {
                String res = p + ".resnets." + j;
                h = rc.run((r, in) -> resnet(res, in.get(0), in.get(1)), h, embAct);
                if (cross) {
                    String att = p + ".attentions." + j;
                    h = rc.run((r, in) -> transformer(r, att, in.get(0), in.get(1), heads), h, context);
                }
                skips.push(h);
            }
            if (i < n - 1) {
                h = rc.run((r, in) -> ops.conv(in.get(0), w.get(p + ".downsamplers.0.conv.weight"), w.get(p + ".downsamplers.0.conv.bias"),
                        2, 1), h);
                skips.push(h);
            }
        }
        h = rc.run((r, in) -> resnet("mid_block.resnets.0", in.get(0), in.get(1)), h, embAct);
        int midHeads = c.attentionHeadDim().get(n - 1);
        h = rc.run((r, in) -> transformer(r, "mid_block.attentions.0", in.get(0), in.get(1), midHeads), h, context);
        h = rc.run((r, in) -> resnet("mid_block.resnets.1", in.get(0), in.get(1)), h, embAct);
        List<Integer> upHeads = new ArrayList<>(c.attentionHeadDim());
        Collections.reverse(upHeads);
        for (int i = 0; i < n; i++) {
            String p = "up_blocks." + i;
            boolean cross = c.upBlockTypes().get(i).equals("CrossAttnUpBlock2D");
            int heads = upHeads.get(i);
            for (int j = 0; j <= c.layersPerBlock(); j++) {
                String res = p + ".resnets." + j;
                h = rc.run((r, in) -> resnet(res, NDArrays.concat(new NDList(in.get(0), in.get(1)), 1), in.get(2)), h, skips.pop(),
                        embAct);
                if (cross) {
                    String att = p + ".attentions." + j;
                    h = rc.run((r, in) -> transformer(r, att, in.get(0), in.get(1), heads), h, context);
                }
            }
            if (i < n - 1) {
                h = rc.run((r, in) -> ops.conv(ops.upsample2x(in.get(0)), w.get(p + ".upsamplers.0.conv.weight"),
                        w.get(p + ".upsamplers.0.conv.bias"), 1, 1), h);
            }
        }
        return rc.run((r, in) -> {
            NDArray x = ops.silu(ops.groupNorm(in.get(0), c.normNumGroups(), w.get("conv_norm_out.weight"), w.get("conv_norm_out.bias"),
                    eps));
            return ops.conv(x, w.get("conv_out.weight"), w.get("conv_out.bias"), 1, 1);
        }, h);
    }

    /** time_embedding: linear, silu, linear, then the silu every resnet's time_emb_proj reads. */
    private NDArray timeEmbedding(NDArray tEmb) {
        NDArray emb = ops.linear(tEmb, w.get("time_embedding.linear_1.weight"), w.get("time_embedding.linear_1.bias"));
        emb = ops.linear(ops.silu(emb), w.get("time_embedding.linear_2.weight"), w.get("time_embedding.linear_2.bias"));
        return ops.silu(emb);
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

    /**
     * Transformer2DModel with one BasicTransformerBlock: self-attention, cross-attention, GEGLU. Cut
     * at its two attentions into sub-segments of {@code r}: when the block is recomputed in backward
     * with a recording {@code r}, the parts around the attentions keep their graphs and the attention
     * chunks are recomputed one at a time ({@link Ops#attention(Recompute, NDArray, NDArray, NDArray,
     * int, NDArray)}); otherwise the parts run one after another as one forward.
     */
    private NDArray transformer(Recompute r, String p, NDArray x, NDArray context, int heads) {
        String t = p + ".transformer_blocks.0.";
        NDList pre = r.keepAll((in, a) -> {
            NDArray h = projIn(p, a.get(0));
            NDArray x1 = ops.layerNorm(h, w.get(t + "norm1.weight"), w.get(t + "norm1.bias"), LAYER_NORM_EPS);
            return new NDList(h, ops.linear(x1, w.get(t + "attn1.to_q.weight"), null), ops.linear(x1, w.get(t + "attn1.to_k.weight"), null),
                    ops.linear(x1, w.get(t + "attn1.to_v.weight"), null));
        }, x);
        NDArray a1 = ops.attention(r, pre.get(1), pre.get(2), pre.get(3), heads, null);
        NDList mid = r.keepAll((in, a) -> {
            NDArray h = a.get(0).add(ops.linear(a.get(1), w.get(t + "attn1.to_out.0.weight"), w.get(t + "attn1.to_out.0.bias")));
            NDArray x2 = ops.layerNorm(h, w.get(t + "norm2.weight"), w.get(t + "norm2.bias"), LAYER_NORM_EPS);
            return new NDList(h, ops.linear(x2, w.get(t + "attn2.to_q.weight"), null), ops.linear(a.get(2), w.get(t + "attn2.to_k.weight"), null),
                    ops.linear(a.get(2), w.get(t + "attn2.to_v.weight"), null));
        }, pre.get(0), a1, context);
        NDArray a2 = ops.attention(r, mid.get(1), mid.get(2), mid.get(3), heads, null);
        return r.keep((in, a) -> {
            NDArray h = a.get(0).add(ops.linear(a.get(1), w.get(t + "attn2.to_out.0.weight"), w.get(t + "attn2.to_out.0.bias")));
            NDArray x3 = ops.layerNorm(h, w.get(t + "norm3.weight"), w.get(t + "norm3.bias"), LAYER_NORM_EPS);
            NDArray proj = ops.linear(x3, w.get(t + "ff.net.0.proj.weight"), w.get(t + "ff.net.0.proj.bias"));
            h = h.add(ops.linear(ops.geglu(proj), w.get(t + "ff.net.2.weight"), w.get(t + "ff.net.2.bias")));
            return projOut(p, h, a.get(2).getShape()).add(a.get(2));
        }, mid.get(0), a2, x);
    }

    /** GroupNorm and proj_in: [B, C, H, W] -> [B, H*W, C]. */
    private NDArray projIn(String p, NDArray x) {
        Shape s = x.getShape();
        long b = s.get(0);
        long ch = s.get(1);
        long hw = s.get(2) * s.get(3);
        NDArray h = ops.groupNorm(x, c.normNumGroups(), w.get(p + ".norm.weight"), w.get(p + ".norm.bias"), TRANSFORMER_NORM_EPS);
        if (c.useLinearProjection()) {
            h = h.transpose(0, 2, 3, 1).reshape(b, hw, ch);
            return ops.linear(h, w.get(p + ".proj_in.weight"), w.get(p + ".proj_in.bias"));
        }
        h = ops.conv(h, w.get(p + ".proj_in.weight"), w.get(p + ".proj_in.bias"), 1, 0);
        return h.transpose(0, 2, 3, 1).reshape(b, hw, ch);
    }

    /** proj_out: [B, H*W, C] -> [B, C, H, W] of shape {@code s}. */
    private NDArray projOut(String p, NDArray h, Shape s) {
        long b = s.get(0);
        long ch = s.get(1);
        long hh = s.get(2);
        long ww = s.get(3);
        if (c.useLinearProjection()) {
            h = ops.linear(h, w.get(p + ".proj_out.weight"), w.get(p + ".proj_out.bias"));
            return h.reshape(b, hh, ww, ch).transpose(0, 3, 1, 2);
        }
        h = h.reshape(b, hh, ww, ch).transpose(0, 3, 1, 2);
        return ops.conv(h, w.get(p + ".proj_out.weight"), w.get(p + ".proj_out.bias"), 1, 0);
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
