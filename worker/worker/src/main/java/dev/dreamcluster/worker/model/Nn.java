package dev.dreamcluster.worker.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
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
     * additive over [Lq, Lk] or null. Computed {@code rows} queries at a time ({@link #chunkRows}):
     * each chunk's scores, scaled scores and softmax live only while that chunk is computed (an
     * NDScope closes them), so without gradients the whole [B*heads, Lq, Lk] score matrix never
     * exists at once. With gradients recorded autograd keeps every chunk's softmax for backward (one
     * copy of the scores, in pieces; the plain form kept three). {@code rows >= Lq} is the plain form.
     */
    static NDArray attention(NDArray q, NDArray k, NDArray v, int heads, NDArray mask, long rows) {
        Shape qs = q.getShape();
        long lq = qs.get(1);
        NDList h = splitHeads(q, k, v, heads);
        NDList parts = new NDList();
        for (long lo = 0; lo < lq; lo += rows) {
            NDArray part;
            try (NDScope scope = new NDScope()) { // this chunk's scores, scaled scores and softmax
                part = attentionRows(h.get(0), h.get(1), h.get(2), mask, lo, Math.min(lq, lo + rows));
                NDScope.unregister(part);
            }
            NDScope.register(part);
            parts.add(part);
        }
        NDArray out;
        if (parts.size() == 1) {
            out = parts.get(0);
        } else {
            out = NDArrays.concat(parts, 1);
            parts.close(); // the concatenation is a copy; autograd keeps nothing of the parts
        }
        return mergeHeads(out, qs.get(0), heads);
    }

    /** {@link #attention} unchunked: the plain form. */
    static NDArray attention(NDArray q, NDArray k, NDArray v, int heads, NDArray mask) {
        return attention(q, k, v, heads, mask, Long.MAX_VALUE);
    }

    /**
     * Queries per chunk so that one chunk's scores [B*heads, rows, Lk] hold at most {@code budget}
     * elements (at least one row); {@code lq} (one chunk: the plain form) when {@code budget <= 0}
     * or the whole matrix fits.
     */
    static long chunkRows(long batch, int heads, long lq, long lk, long budget) {
        if (budget <= 0) {
            return lq;
        }
        long perRow = batch * heads * lk;
        return Math.min(lq, Math.max(1, budget / perRow));
    }

    /**
     * The heads of q, k and v as batched matrices: q [B*heads, Lq, d], k transposed [B*heads, d, Lk]
     * (ready for the score product) and v [B*heads, Lk, d].
     */
    static NDList splitHeads(NDArray q, NDArray k, NDArray v, int heads) {
        Shape qs = q.getShape();
        long b = qs.get(0);
        long lq = qs.get(1);
        long c = qs.get(2);
        long lk = k.getShape().get(1);
        long d = c / heads;
        NDArray qh = q.reshape(b, lq, heads, d).transpose(0, 2, 1, 3).reshape(b * heads, lq, d);
        NDArray kh = k.reshape(b, lk, heads, d).transpose(0, 2, 3, 1).reshape(b * heads, d, lk);
        NDArray vh = v.reshape(b, lk, heads, d).transpose(0, 2, 1, 3).reshape(b * heads, lk, d);
        return new NDList(qh, kh, vh);
    }

    /**
     * softmax(q k^T / sqrt(d) + mask) v for query rows [lo, hi) of {@link #splitHeads}' output:
     * [B*heads, hi - lo, d]. Rows [0, Lq) is the whole product, as one op sequence.
     */
    static NDArray attentionRows(NDArray qh, NDArray kh, NDArray vh, NDArray mask, long lo, long hi) {
        long lq = qh.getShape().get(1);
        long d = qh.getShape().get(2);
        boolean whole = lo == 0 && hi == lq;
        NDArray qc = whole ? qh : qh.get(new NDIndex(":, {}:{}, :", lo, hi));
        NDArray scores = scale(qc.batchMatMul(kh), (float) (1.0 / Math.sqrt(d)));
        if (mask != null) {
            scores = scores.add(whole ? mask : mask.get(new NDIndex("{}:{}, :", lo, hi)));
        }
        return scores.softmax(-1).batchMatMul(vh);
    }

    /** [B*heads, Lq, d] back to [B, Lq, heads * d]. */
    static NDArray mergeHeads(NDArray oh, long b, int heads) {
        Shape s = oh.getShape();
        long lq = s.get(1);
        long d = s.get(2);
        return oh.reshape(b, heads, lq, d).transpose(0, 2, 1, 3).reshape(b, lq, heads * d);
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
