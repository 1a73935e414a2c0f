package dev.dreamcluster.worker.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.core.Linear;
import ai.djl.nn.norm.LayerNorm;

/**
 * The layer functions Stable Diffusion needs, over NDArrays in PyTorch layouts (NCHW images,
 * [batch, tokens, channels] sequences, weights [out, in(, kh, kw)]). DJL has no GroupNorm, so it is
 * composed here; everything else maps to one libtorch op. Results attach to the first input's
 * manager; callers run a step inside an NDScope so intermediates are freed. Models call these through
 * {@link Ops}, which adds tracing and the measured convolution form ({@link ConvForm}).
 */
final class Nn {
    private Nn() {}

    /**
     * x * v with v held in a libtorch-owned scalar tensor. DJL's {@code mul(Number)} wraps the number in
     * a from_blob tensor over a Java buffer and closes it right after the op; autograd keeps that
     * tensor for backward (d(x*v)/dx = v), so a GC in between made backward read freed memory (seen
     * as rare garbage gradients). Every scalar that meets a grad-tracked tensor goes through here.
     */
    static NDArray scale(NDArray x, float v) {
        return x.mul(Tensors.of(x.getManager(), new float[] {v}, new Shape()));
    }

    static NDArray plus(NDArray x, float v) {
        return x.add(Tensors.of(x.getManager(), new float[] {v}, new Shape()));
    }

    static NDArray linear(NDArray x, NDArray w, NDArray b) {
        return b == null ? Linear.linear(x, w).head() : Linear.linear(x, w, b).head();
    }

    /** Zero padding of {@code pad} rows and columns on every side of [N, C, H, W]. */
    static NDArray zeroPad(NDArray x, int pad) {
        return x.pad(new Shape(pad, pad, pad, pad), 0);
    }

    /** GEGLU's gate: value * gelu(gate), the two halves of the last axis of {@code proj}. */
    static NDArray geglu(NDArray proj) {
        ai.djl.ndarray.NDList halves = proj.split(2, proj.getShape().dimension() - 1);
        return halves.get(0).mul(gelu(halves.get(1)));
    }

    /** GroupNorm over [N, C, ...]: normalise each of {@code groups} channel groups, then a per-channel affine. */
    static NDArray groupNorm(NDArray x, int groups, NDArray gamma, NDArray beta, float eps) {
        Shape s = x.getShape();
        NDArray g = x.reshape(s.get(0), groups, -1);
        NDArray mean = g.mean(new int[] {2}, true);
        NDArray centered = g.sub(mean);
        NDArray var = centered.square().mean(new int[] {2}, true);
        NDArray norm = centered.div(plus(var, eps).sqrt()).reshape(s);
        long[] affine = new long[s.dimension()];
        java.util.Arrays.fill(affine, 1);
        affine[1] = s.get(1);
        return norm.mul(gamma.reshape(affine)).add(beta.reshape(affine));
    }

    static NDArray layerNorm(NDArray x, NDArray gamma, NDArray beta, float eps) {
        return LayerNorm.layerNorm(x, new Shape(gamma.getShape().get(0)), gamma, beta, eps).head();
    }

    static NDArray silu(NDArray x) {
        return x.mul(Activation.sigmoid(x));
    }

    /** Exact (erf) GELU, as PyTorch's default and diffusers' GEGLU use. */
    static NDArray gelu(NDArray x) {
        return Activation.gelu(x);
    }

    /** CLIP's quick_gelu: x * sigmoid(1.702 x). */
    static NDArray quickGelu(NDArray x) {
        return x.mul(Activation.sigmoid(scale(x, 1.702f)));
    }

    /**
     * Multi-head scaled dot-product attention. q [B, Lq, C], k and v [B, Lk, C]; {@code mask} is
     * additive over [Lq, Lk] or null. Cost: B*heads*Lq*Lk floats for the scores (kept for backward).
     */
    static NDArray attention(NDArray q, NDArray k, NDArray v, int heads, NDArray mask) {
        Shape qs = q.getShape();
        long b = qs.get(0);
        long lq = qs.get(1);
        long c = qs.get(2);
        long lk = k.getShape().get(1);
        long d = c / heads;
        NDArray qh = q.reshape(b, lq, heads, d).transpose(0, 2, 1, 3).reshape(b * heads, lq, d);
        NDArray kh = k.reshape(b, lk, heads, d).transpose(0, 2, 3, 1).reshape(b * heads, d, lk);
        NDArray vh = v.reshape(b, lk, heads, d).transpose(0, 2, 1, 3).reshape(b * heads, lk, d);
        NDArray scores = scale(qh.batchMatMul(kh), (float) (1.0 / Math.sqrt(d)));
        if (mask != null) {
            scores = scores.add(mask);
        }
        NDArray out = scores.softmax(-1).batchMatMul(vh);
        return out.reshape(b, heads, lq, d).transpose(0, 2, 1, 3).reshape(b, lq, c);
    }

    /** Nearest-neighbour 2x upsampling of [N, C, H, W]. */
    static NDArray upsample2x(NDArray x) {
        return x.repeat(2, 2).repeat(3, 2);
    }

    /** Zero padding of one row at the bottom and one column at the right (the VAE's asymmetric downsample pad). */
    static NDArray padBottomRight(NDArray x) {
        Shape s = x.getShape();
        NDArray col = x.getManager().zeros(new Shape(s.get(0), s.get(1), s.get(2), 1), x.getDataType(), x.getDevice());
        NDArray wide = NDArrays.concat(new ai.djl.ndarray.NDList(x, col), 3);
        NDArray row = x.getManager().zeros(new Shape(s.get(0), s.get(1), 1, s.get(3) + 1), x.getDataType(), x.getDevice());
        return NDArrays.concat(new ai.djl.ndarray.NDList(wide, row), 2);
    }
}
