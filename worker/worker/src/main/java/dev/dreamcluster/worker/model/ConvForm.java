package dev.dreamcluster.worker.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.convolutional.Conv2d;

/**
 * The ways one 2-D convolution can be computed. All three give the same function; they differ in
 * which libtorch kernels run forward and backward, and so in which kernel defects they meet. The
 * startup check ({@code worker.check.OpCheck}) measures them against float64 in declaration order and
 * keeps the first that is exact at each shape.
 *
 * <p>Order: the padded form comes first because it is the direct kernel itself wherever the output
 * channels are a multiple of 16 (no cost), and because the defect below reads memory it never wrote:
 * the direct kernel's answer is right on some draws and wrong on others at the same shape (measured
 * here), so one passing measurement of it would prove nothing.
 *
 * <p>Why: on AMD Zen 5 (2-core EPYC, AVX-512) DJL's libtorch 2.7.1 CPU build returns wrong input
 * gradients for 3x3 conv2d whose output channel count is not a multiple of 16 (relative L2 0.02-0.8
 * against float64, or NaN; different from run to run and with the thread count; a few stride-2 shapes
 * too, never 1x1). Every SD UNet ends in such a convolution (conv_out, 320 -> 4), so every gradient
 * upstream of it was wrong. Debian's torch 1.13 on the same machine is exact. See
 * docs/known-defects.md for the reproduction.
 */
public enum ConvForm {
    /**
     * Output channels padded with zero filters to the next multiple of 16 (at least 16), the result
     * sliced back. The padded filters' outputs are discarded, so their gradients never reach {@code w};
     * the input gradient is computed by the kernel for >= 16 channels. Cost: the conv at the padded
     * width (4x for SD's conv_out, a negligible share of a UNet step); none when the width is already
     * a multiple of 16 (every other convolution of SD's UNet).
     */
    PADDED_OUTPUT {
        @Override
        NDArray apply(NDArray x, NDArray w, NDArray b, int stride, int pad) {
            Shape ws = w.getShape();
            long out = ws.get(0);
            long padded = Math.max(16, (out + 15) / 16 * 16);
            if (padded == out) {
                return DIRECT.apply(x, w, b, stride, pad);
            }
            NDArray zeros = w.getManager().zeros(new Shape(padded - out, ws.get(1), ws.get(2), ws.get(3)), w.getDataType(), w.getDevice());
            NDArray wp = NDArrays.concat(new NDList(w, zeros), 0);
            NDArray bp = b == null ? null
                    : NDArrays.concat(new NDList(b, b.getManager().zeros(new Shape(padded - out), b.getDataType(), b.getDevice())), 0);
            return DIRECT.apply(x, wp, bp, stride, pad).get(new NDIndex(":, 0:" + out));
        }
    },
    /** libtorch's conv2d as is: the fast path, where it is exact. */
    DIRECT {
        @Override
        NDArray apply(NDArray x, NDArray w, NDArray b, int stride, int pad) {
            return Conv2d.conv2d(x, w, b, new Shape(stride, stride), new Shape(pad, pad), new Shape(1, 1), 1).head();
        }
    },
    /**
     * im2col by shifted strided views and one matrix product: [N, Cin*k*k, Ho*Wo] columns times the
     * [Cout, Cin*k*k] filters. No convolution kernel at all, so it is the fallback when both forms
     * above are wrong. Cost: k*k copies of the input held for backward.
     */
    SHIFTED_MATMUL {
        @Override
        NDArray apply(NDArray x, NDArray w, NDArray b, int stride, int pad) {
            Shape xs = x.getShape();
            Shape ws = w.getShape();
            long n = xs.get(0);
            long cin = xs.get(1);
            long out = ws.get(0);
            int kh = (int) ws.get(2);
            int kw = (int) ws.get(3);
            long ho = (xs.get(2) + 2L * pad - kh) / stride + 1;
            long wo = (xs.get(3) + 2L * pad - kw) / stride + 1;
            NDArray xp = pad == 0 ? x : Nn.zeroPad(x, pad);
            NDList taps = new NDList(kh * kw);
            for (int i = 0; i < kh; i++) {
                for (int j = 0; j < kw; j++) {
                    String rows = i + ":" + (i + stride * (ho - 1) + 1) + ":" + stride;
                    String cols = j + ":" + (j + stride * (wo - 1) + 1) + ":" + stride;
                    taps.add(xp.get(new NDIndex(":, :, " + rows + ", " + cols)));
                }
            }
            // [N, Cin, k*k, Ho, Wo]: the flattening order of the filters [Cout, Cin, kh, kw]
            NDArray columns = NDArrays.stack(taps, 2).reshape(n, cin * kh * kw, ho * wo);
            NDArray y = w.reshape(out, cin * kh * kw).matMul(columns).reshape(n, out, ho, wo);
            return b == null ? y : y.add(b.reshape(1, out, 1, 1));
        }
    };

    abstract NDArray apply(NDArray x, NDArray w, NDArray b, int stride, int pad);
}
