package dev.dreamcluster.worker.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.Shape;
import dev.dreamcluster.model.VaeConfig;
import java.util.List;

/**
 * diffusers' AutoencoderKL: the encoder maps images in [-1, 1] [B, 3, H, W] to a diagonal Gaussian
 * over latents [B, 4, H/8, W/8]; the decoder maps latents back. GroupNorm eps is 1e-6 throughout.
 */
public final class VaeModel {
    static final float EPS = 1e-6f;

    private final VaeConfig c;
    private final ModelWeights w;
    private final Ops ops;

    public VaeModel(VaeConfig config, ModelWeights weights, Ops ops) {
        this.c = config;
        this.w = weights;
        this.ops = ops;
    }

    /**
     * Mean and log-variance (clamped to [-30, 20]) of the latent distribution, unscaled. Each block's
     * intermediates are freed when it returns and the block outputs when the encoder does: only the
     * two results stay in the caller's scope (the training step's, through the UNet's step).
     */
    public NDList encode(NDArray images) {
        return Recompute.DIRECT.runAll((r, in) -> encodeBlocks(in.get(0)), images);
    }

    private NDList encodeBlocks(NDArray images) {
        List<Integer> boc = c.blockOutChannels();
        int n = boc.size();
        NDArray h = ops.conv(images, w.get("encoder.conv_in.weight"), w.get("encoder.conv_in.bias"), 1, 1);
        for (int i = 0; i < n; i++) {
            String p = "encoder.down_blocks." + i;
            for (int j = 0; j < c.layersPerBlock(); j++) {
                h = resnet(p + ".resnets." + j, h);
            }
            if (i < n - 1) {
                h = step(x -> ops.conv(ops.padBottomRight(x), w.get(p + ".downsamplers.0.conv.weight"), w.get(p + ".downsamplers.0.conv.bias"),
                        2, 0), h);
            }
        }
        h = mid("encoder.mid_block", h);
        NDArray moments = step(x -> {
            NDArray y = ops.silu(ops.groupNorm(x, c.normNumGroups(), w.get("encoder.conv_norm_out.weight"), w.get("encoder.conv_norm_out.bias"),
                    EPS));
            y = ops.conv(y, w.get("encoder.conv_out.weight"), w.get("encoder.conv_out.bias"), 1, 1);
            return ops.conv(y, w.get("quant_conv.weight"), w.get("quant_conv.bias"), 1, 0);
        }, h);
        NDList parts = moments.split(2, 1);
        return new NDList(parts.get(0), parts.get(1).clip(-30f, 20f));
    }

    /** A latent sample (mean + std * noise) times the scaling factor: what the UNet trains on. */
    public NDArray sampleScaled(NDArray images, NDArray noise) {
        NDList dist = encode(images);
        NDArray std = dist.get(1).mul(0.5f).exp();
        return dist.get(0).add(std.mul(noise)).mul((float) c.scalingFactor());
    }

    /** Images in about [-1, 1] from unscaled latents (intermediates freed as in {@link #encode}). */
    public NDArray decode(NDArray latents) {
        return Recompute.DIRECT.run((r, in) -> decodeBlocks(in.get(0)), latents);
    }

    private NDArray decodeBlocks(NDArray latents) {
        List<Integer> boc = c.blockOutChannels();
        int n = boc.size();
        NDArray h = ops.conv(latents, w.get("post_quant_conv.weight"), w.get("post_quant_conv.bias"), 1, 0);
        h = ops.conv(h, w.get("decoder.conv_in.weight"), w.get("decoder.conv_in.bias"), 1, 1);
        h = mid("decoder.mid_block", h);
        for (int i = 0; i < n; i++) {
            String p = "decoder.up_blocks." + i;
            for (int j = 0; j <= c.layersPerBlock(); j++) {
                h = resnet(p + ".resnets." + j, h);
            }
            if (i < n - 1) {
                h = step(x -> ops.conv(ops.upsample2x(x), w.get(p + ".upsamplers.0.conv.weight"), w.get(p + ".upsamplers.0.conv.bias"), 1, 1),
                        h);
            }
        }
        return step(x -> {
            NDArray y = ops.silu(ops.groupNorm(x, c.normNumGroups(), w.get("decoder.conv_norm_out.weight"), w.get("decoder.conv_norm_out.bias"),
                    EPS));
            return ops.conv(y, w.get("decoder.conv_out.weight"), w.get("decoder.conv_out.bias"), 1, 1);
        }, h);
    }

    /**
     * One block as a {@link Recompute#DIRECT} segment: its intermediates are freed when it returns
     * (DJL would keep them until the caller's scope closes; at 512 px one of the encoder's first
     * tensors is 128 MiB per image).
     */
    private static NDArray step(java.util.function.UnaryOperator<NDArray> block, NDArray x) {
        return Recompute.DIRECT.run((r, in) -> block.apply(in.get(0)), x);
    }

    private NDArray resnet(String p, NDArray x) {
        return step(in -> resnetBlock(p, in), x);
    }

    private NDArray resnetBlock(String p, NDArray x) {
        int g = c.normNumGroups();
        NDArray h = ops.silu(ops.groupNorm(x, g, w.get(p + ".norm1.weight"), w.get(p + ".norm1.bias"), EPS));
        h = ops.conv(h, w.get(p + ".conv1.weight"), w.get(p + ".conv1.bias"), 1, 1);
        h = ops.silu(ops.groupNorm(h, g, w.get(p + ".norm2.weight"), w.get(p + ".norm2.bias"), EPS));
        h = ops.conv(h, w.get(p + ".conv2.weight"), w.get(p + ".conv2.bias"), 1, 1);
        NDArray shortcut = w.opt(p + ".conv_shortcut.weight") == null ? x
                : ops.conv(x, w.get(p + ".conv_shortcut.weight"), w.get(p + ".conv_shortcut.bias"), 1, 0);
        return shortcut.add(h);
    }

    private NDArray mid(String p, NDArray h) {
        h = resnet(p + ".resnets.0", h);
        h = step(x -> attention(p + ".attentions.0", x), h);
        return resnet(p + ".resnets.1", h);
    }

    /** Single-head self-attention over pixels, with group norm and a residual connection. */
    private NDArray attention(String p, NDArray x) {
        Shape s = x.getShape();
        long b = s.get(0);
        long ch = s.get(1);
        long hw = s.get(2) * s.get(3);
        NDArray h = ops.groupNorm(x, c.normNumGroups(), w.get(p + ".group_norm.weight"), w.get(p + ".group_norm.bias"), EPS);
        h = h.reshape(b, ch, hw).transpose(0, 2, 1);
        NDArray q = ops.linear(h, weight(p + ".to_q.weight"), w.get(p + ".to_q.bias"));
        NDArray k = ops.linear(h, weight(p + ".to_k.weight"), w.get(p + ".to_k.bias"));
        NDArray v = ops.linear(h, weight(p + ".to_v.weight"), w.get(p + ".to_v.bias"));
        NDArray a = ops.attention(q, k, v, 1, null);
        a = ops.linear(a, weight(p + ".to_out.0.weight"), w.get(p + ".to_out.0.bias"));
        return a.transpose(0, 2, 1).reshape(s).add(x);
    }

    /** Attention projections stored as 1x1 convs [c, c, 1, 1] by converted checkpoints are used as [c, c]. */
    private NDArray weight(String name) {
        NDArray a = w.get(name);
        return a.getShape().dimension() == 4 ? a.reshape(a.getShape().get(0), a.getShape().get(1)) : a;
    }
}
