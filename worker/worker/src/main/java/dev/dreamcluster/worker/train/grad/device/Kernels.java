package dev.dreamcluster.worker.train.grad.device;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;

/**
 * The fp32 optimizer formulas as libtorch ops, one rounding each, in the order of the Java scalar
 * kernels ({@code AdamWKernel.stepScalar}, {@code LionKernel.stepScalar}, {@code Fp32FallbackKernel}).
 * Scalars are 0-dim fp32 tensors on the device; a null factor is an exact 1.0f (the Java kernels
 * multiply by it; x * 1.0f is x, so the op is skipped). Products are written operand-swapped where it
 * reads better ({@code g * omb2} for {@code omb2 * g}): IEEE multiplication commutes bit for bit.
 */
final class Kernels {
    private Kernels() {}

    /**
     * The correctly rounded fp32 square root, as IEEE (and Java's {@code (float) Math.sqrt}) define it.
     * libtorch's CPU fp32 sqrt is faithful, not correctly rounded (measured: 17% of random floats 1 ulp
     * off), so the root is taken in fp64 and rounded once to fp32: a float's root is never within
     * 2^-50 (relative) of a float midpoint, and fp64's error is under 2^-52, so the rounding is right.
     * CUDA's fp32 sqrt is IEEE already; the fp64 route gives the same bits there. 3 ops.
     */
    static NDArray sqrt(NDArray x) {
        try (NDArray d = x.toType(DataType.FLOAT64, false); NDArray r = d.sqrt()) {
            return r.toType(DataType.FLOAT32, false);
        }
    }

    /**
     * torch.where(condition, a, b) with broadcasting (DJL's NDArrays.where demands that a has the
     * condition's shape; a scalar a is common here). The result belongs to a's manager.
     */
    static NDArray where(NDArray condition, NDArray a, NDArray b) {
        return JniUtils.where((PtNDArray) condition, (PtNDArray) a, (PtNDArray) b);
    }

    /**
     * torch.optim.AdamW: p = p*wdf; m = lerp(m, g, w); v = v*b2 + (omb2*g)*g; p = p + (nss*m) /
     * (sqrt(v)/bc2s + eps). 15 ops (16 with decay; one more copy when w >= 0.5).
     */
    static void adamw(NDArray p, NDArray g, NDArray m, NDArray v, NDArray wdf, boolean lerpLow, NDArray w,
            NDArray b2, NDArray omb2, NDArray bc2s, NDArray nss, NDArray eps) {
        if (wdf != null) {
            p.muli(wdf);
        }
        try (NDArray d = g.sub(m)) {
            d.muli(w); // w is 1-b1 below 0.5, else 1-(1-b1)
            if (lerpLow) {
                m.addi(d); // m + w*(g - m)
            } else {
                try (NDArray r = g.sub(d)) { // g - (g - m)*(1 - w)
                    m.set(new NDIndex(":"), r);
                }
            }
        }
        v.muli(b2);
        try (NDArray t = g.mul(omb2)) {
            v.addi(t.muli(g));
        }
        try (NDArray den = sqrt(v); NDArray num = m.mul(nss)) {
            den.divi(bc2s).addi(eps);
            p.addi(num.divi(den));
        }
    }

    /** lion-pytorch: p = p*wdf + negLr*sign(m*b1 + omb1*g); m = m*b2 + omb2*g. 10 ops (9 without decay). */
    static void lion(NDArray p, NDArray g, NDArray m, NDArray wdf, NDArray b1, NDArray omb1, NDArray negLr,
            NDArray b2, NDArray omb2) {
        try (NDArray c = m.mul(b1); NDArray t = g.mul(omb1)) {
            c.addi(t).signi().muli(negLr);
            if (wdf != null) {
                p.muli(wdf);
            }
            p.addi(c);
        }
        m.muli(b2);
        try (NDArray t = g.mul(omb2)) {
            m.addi(t);
        }
    }

    /**
     * bitsandbytes' 32-bit Adam kernel (8-bit optimizers' tensors under 4096): m = m*b1 + omb1*g; v =
     * v*b2 + omb2*(g*g); p = p + stepSize*(m/(sqrt(v) + epsC2)); p = p*wdf if wd > 0. 15 ops (16 with decay).
     */
    static void adamFallback(NDArray p, NDArray g, NDArray m, NDArray v, NDArray b1, NDArray omb1, NDArray b2,
            NDArray omb2, NDArray stepSize, NDArray epsC2, NDArray wdf) {
        m.muli(b1);
        try (NDArray t = g.mul(omb1)) {
            m.addi(t);
        }
        v.muli(b2);
        try (NDArray t = g.mul(g)) {
            v.addi(t.muli(omb2));
        }
        try (NDArray den = sqrt(v); NDArray q = m.div(den.addi(epsC2))) {
            p.addi(q.muli(stepSize));
        }
        if (wdf != null) {
            p.muli(wdf);
        }
    }

    /** bitsandbytes' 32-bit Lion kernel: p = p*wdf if wd > 0; p = p - lr*sign(m*b1 + omb1*g); m = m*b2 + omb2*g. 9 ops (+1). */
    static void lionFallback(NDArray p, NDArray g, NDArray m, NDArray wdf, NDArray b1, NDArray omb1, NDArray lr,
            NDArray b2, NDArray omb2) {
        if (wdf != null) {
            p.muli(wdf);
        }
        try (NDArray c = m.mul(b1); NDArray t = g.mul(omb1)) {
            p.subi(c.addi(t).signi().muli(lr));
        }
        m.muli(b2);
        try (NDArray t = g.mul(omb2)) {
            m.addi(t);
        }
    }
}
