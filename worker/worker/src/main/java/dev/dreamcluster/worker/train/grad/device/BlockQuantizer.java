package dev.dreamcluster.worker.train.grad.device;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.dreamcluster.optim.kernel.QuantMap;

/**
 * bitsandbytes' blockwise dynamic quantisation as libtorch operations, equal to {@link QuantMap}'s
 * quantizers code for code (the optimizer's rule: nearest code of {@code state / absmax}, ties to the
 * even index, then the signed map's sign fix; a NaN ratio takes the code bitsandbytes' kernels give
 * it).
 *
 * <p><b>Quantisation: an arithmetic index and a one-step correction.</b> With {@code a = |x|} in
 * [0, 1], the candidate comes from a's exponent and mantissa together through log2: the bin
 * {@code k = trunc(min(-128 * log2(a), 3072))} (3073 bins of 2^(1/128), about 0.54% wide; everything
 * below 2^-24 shares the last). A table row per bin (and per sign for the signed map) holds
 * {@code (c - 1, T[c], T[c + 1])} where c is the bin's candidate code and {@code T[j]} is the largest
 * float that the reference quantizer still maps below code j (found once, by bisecting QuantMap
 * itself, so ties and the sign fix are inherited exactly). The code is then
 * {@code (c - 1) + [x > T[c]] + [x > T[c + 1]]}: one gather of the row and two comparisons with the
 * neighbouring thresholds, exact whenever the true code is within one of c. It is, with room to spare:
 * adjacent thresholds are at least 1.29 bins apart (the unsigned map's top decade, 0.7% steps), so a
 * bin widened by 0.18 bins on each side still meets at most two of them, and the build checks every
 * bin that way ({@link #rows}); log2's error (an ulp of a number below 24, times 128) and the rounding of
 * the row arithmetic move a value by under 0.001 bins. No element is compared with 256 codes.
 *
 * <p><b>Dequantisation</b> is a gather from the 256-entry map times the block's absmax.
 *
 * <p>Costs per element (elementwise libtorch ops): unsigned 12, signed 24 (the sign of zero and the
 * NaN rules take 12 of them); dequantisation 3.
 *
 * <p>Precondition, as in the optimizers: every state is at most its block's absmax in magnitude (the
 * absmax is their maximum), so x is in [-1, 1] or NaN.
 */
final class BlockQuantizer implements AutoCloseable {
    /** Bins of -128*log2|x| over [2^-24, 1], the last one holding everything smaller. */
    static final int BINS = 3073;
    static final float LAST_BIN = BINS - 1;
    /** A bin widened by this relative amount on each side meets at most three codes (checked). */
    private static final double MARGIN = 1e-3;

    /** Thresholds T[0..256] of the unsigned map and of the signed map's non-negative and negative sides. */
    static final float[] T_UNSIGNED = thresholds(Side.UNSIGNED);
    static final float[] T_POSITIVE = thresholds(Side.POSITIVE);
    static final float[] T_NEGATIVE = thresholds(Side.NEGATIVE);
    /** Rows (base, tLo, tHi): unsigned [BINS, 3]; signed [2 * BINS, 3], non-negative x first. */
    static final float[] ROWS_UNSIGNED = rows(Side.UNSIGNED);
    static final float[] ROWS_SIGNED = concat(rows(Side.POSITIVE), rows(Side.NEGATIVE));

    enum Side {
        UNSIGNED,
        POSITIVE,
        NEGATIVE
    }

    private final NDManager manager;
    final NDArray signedMap;
    final NDArray unsignedMap;
    private final NDArray signedRows;
    private final NDArray unsignedRows;
    private final NDArray zero;
    private final NDArray one;
    private final NDArray negBinScale;
    private final NDArray lastBin;
    private final NDArray bins;
    private final NDArray code0;
    private final NDArray code1;
    private final NDArray code255;

    BlockQuantizer(NDManager parent) {
        this.manager = parent.newSubManager();
        this.signedMap = DeviceOptimizer.keep(DeviceCopy.upload(manager, QuantMap.SIGNED));
        this.unsignedMap = DeviceOptimizer.keep(DeviceCopy.upload(manager, QuantMap.UNSIGNED));
        try (NDArray s = DeviceCopy.upload(manager, ROWS_SIGNED); NDArray u = DeviceCopy.upload(manager, ROWS_UNSIGNED)) {
            this.signedRows = DeviceOptimizer.keep(s.reshape(2L * BINS, 3));
            this.unsignedRows = DeviceOptimizer.keep(u.reshape(BINS, 3));
        }
        this.zero = DeviceOptimizer.keep(scalar(manager, 0f));
        this.one = DeviceOptimizer.keep(scalar(manager, 1f));
        this.negBinScale = DeviceOptimizer.keep(scalar(manager, -128f));
        this.lastBin = DeviceOptimizer.keep(scalar(manager, LAST_BIN));
        this.bins = DeviceOptimizer.keep(scalar(manager, BINS));
        this.code0 = DeviceOptimizer.keep(scalar(manager, 0f));
        this.code1 = DeviceOptimizer.keep(scalar(manager, 1f));
        this.code255 = DeviceOptimizer.keep(scalar(manager, 255f));
    }

    /** A 0-dim fp32 tensor allocated by libtorch (torch::full), not a wrapped Java buffer. */
    static NDArray scalar(NDManager m, float v) {
        return m.full(new Shape(), v, DataType.FLOAT32, m.getDevice());
    }

    /** Bytes of the tables on the device. */
    long bytes() {
        return 4L * (2 * 256 + ROWS_SIGNED.length + ROWS_UNSIGNED.length);
    }

    /** {@code map[codes] * absmax}: codes uint8 [rows, 256], absmax fp32 [rows, 1]. 3 ops. */
    NDArray dequantize(NDArray codes, boolean signed, NDArray absmax) {
        NDArray out;
        try (NDArray idx = codes.toType(DataType.INT64, false)) {
            out = (signed ? signedMap : unsignedMap).take(idx);
        }
        return out.muli(absmax);
    }

    /**
     * Codes of the second moment {@code v} (>= 0 or NaN) against the block maxima {@code absmax}
     * ([rows, 1]): nearest code of v / absmax; a NaN ratio (absmax 0 or Inf, NaN v) gives 0. 12 ops.
     */
    NDArray quantizeUnsigned(NDArray v, NDArray absmax) {
        try (NDArray x = v.div(absmax); NDArray row = binIndex(x, null); NDArray r = unsignedRows.get(new NDIndex("{}", row));
                NDArray code = pick(r, x)) {
            return code.toType(DataType.UINT8, false);
        }
    }

    /**
     * Codes of a signed state {@code s} against {@code absmax} ([rows, 1]), as the optimizer kernels
     * store m: the nearest code of x = s / absmax, the sign fix (a negative x, or -0, never takes the
     * code of +0.0), and for a NaN x the value's rule: NaN s -> 255, s with its sign bit set -> 0, s > 0 ->
     * 1, s = +0 -> 255 ({@link QuantMap#quantizeSignedRatio}). 24 ops.
     */
    NDArray quantizeSigned(NDArray s, NDArray absmax) {
        try (NDArray x = s.div(absmax); NDArray neg = signBit(s); NDArray row = binIndex(x, neg);
                NDArray r = signedRows.get(new NDIndex("{}", row)); NDArray code = pick(r, x);
                NDArray nanCode = nanCode(s, neg); NDArray nan = x.isNaN();
                NDArray fixed = Kernels.where(nan, nanCode, code)) {
            return fixed.toType(DataType.UINT8, false);
        }
    }

    /**
     * The sign bit of s for every value but NaN: s < 0, or 1/s < 0 (-0 gives -Inf). -Inf needs the
     * first test (1/-Inf is -0); 4 ops.
     */
    private NDArray signBit(NDArray s) {
        try (NDArray inv = one.div(s); NDArray a = inv.lt(zero); NDArray b = s.lt(zero)) {
            return a.logicalOr(b);
        }
    }

    /** The row of each x: its bin, plus BINS on the negative side; NaN lands in the last bin. 5 ops (+3 signed). */
    private NDArray binIndex(NDArray x, NDArray neg) {
        NDArray y;
        if (neg == null) {
            y = x.log2();
        } else {
            try (NDArray a = x.abs()) {
                y = a.log2();
            }
        }
        try (y; NDArray inRange = y.muli(negBinScale).lte(lastBin); NDArray k = Kernels.where(inRange, y, lastBin)) {
            if (neg != null) {
                try (NDArray off = neg.mul(bins)) {
                    k.addi(off);
                }
            }
            return k.toType(DataType.INT64, false);
        }
    }

    /** (c - 1) + [x > T[c]] + [x > T[c + 1]] from the gathered rows [.., 3]. 5 ops. */
    private static NDArray pick(NDArray rows, NDArray x) {
        try (NDArray base = rows.get(new NDIndex("..., 0")); NDArray lo = rows.get(new NDIndex("..., 1"));
                NDArray hi = rows.get(new NDIndex("..., 2")); NDArray aboveLo = x.gt(lo); NDArray aboveHi = x.gt(hi)) {
            NDArray code = base.add(aboveLo);
            return code.addi(aboveHi);
        }
    }

    /** The NaN-ratio codes of the signed map from the value: sign bit -> 0, s > 0 -> 1, else (NaN, +0) 255. 3 ops. */
    private NDArray nanCode(NDArray s, NDArray neg) {
        try (NDArray pos = s.gt(zero); NDArray posCode = Kernels.where(pos, code1, code255)) {
            return Kernels.where(neg, code0, posCode);
        }
    }

    @Override
    public void close() {
        manager.close();
    }

    // ---- tables (built once, in Java, from QuantMap itself) ----

    /** The reference code of x on a side (x in [0, 1] for UNSIGNED/POSITIVE, [-1, -0] for NEGATIVE). */
    static int reference(Side side, float x) {
        return side == Side.UNSIGNED ? QuantMap.quantizeUnsigned(x) : QuantMap.quantizeSigned(x, 1f);
    }

    /** The side's floats in increasing order: index 0 .. 0x3F800000. */
    private static float at(Side side, int i) {
        return side == Side.NEGATIVE ? Float.intBitsToFloat(0xBF800000 - i) : Float.intBitsToFloat(i);
    }

    /**
     * T[j] = the largest float of the side whose reference code is below j (-Inf if none, +Inf if all);
     * so on that side code(x) = #{j in 1..255 : x > T[j]}. Bisection over the ordered floats.
     */
    static float[] thresholds(Side side) {
        final int last = 0x3F800000;
        float[] t = new float[257];
        t[0] = Float.NEGATIVE_INFINITY;
        t[256] = Float.POSITIVE_INFINITY;
        for (int j = 1; j <= 255; j++) {
            if (reference(side, at(side, 0)) >= j) {
                t[j] = Float.NEGATIVE_INFINITY;
            } else if (reference(side, at(side, last)) < j) {
                t[j] = Float.POSITIVE_INFINITY;
            } else {
                int lo = 0; // code(lo) < j
                int hi = last; // code(hi) >= j
                while (hi - lo > 1) {
                    int mid = (lo + hi) >>> 1;
                    if (reference(side, at(side, mid)) < j) {
                        lo = mid;
                    } else {
                        hi = mid;
                    }
                }
                t[j] = at(side, lo);
            }
        }
        for (int j = 1; j <= 256; j++) {
            if (!(t[j] >= t[j - 1])) {
                throw new IllegalStateException(side + " thresholds not monotone at " + j);
            }
        }
        return t;
    }

    /**
     * The rows of a side: for bin k (a in (2^(-(k+1)/128), 2^(-k/128)], the last bin down to 0), the
     * reference codes at the bin's ends widened by {@link #MARGIN}; they may differ by at most 2, and the
     * candidate is their middle, so every value the device can put in the bin is within one code of it.
     */
    static float[] rows(Side side) {
        float[] t = side == Side.UNSIGNED ? T_UNSIGNED : side == Side.POSITIVE ? T_POSITIVE : T_NEGATIVE;
        float[] out = new float[3 * BINS];
        for (int k = 0; k < BINS; k++) {
            double hi = k == 0 ? 1.0 : Math.min(1.0, Math.pow(2, -k / 128.0) * (1 + MARGIN));
            double lo = k == BINS - 1 ? 0.0 : Math.pow(2, -(k + 1) / 128.0) * (1 - MARGIN);
            float a = (float) lo;
            float b = (float) hi;
            int ca = reference(side, side == Side.NEGATIVE ? -a : a);
            int cb = reference(side, side == Side.NEGATIVE ? -b : b);
            int min = Math.min(ca, cb);
            int max = Math.max(ca, cb);
            if (max - min > 2) {
                throw new IllegalStateException(side + " bin " + k + " spans codes " + min + ".." + max);
            }
            int c = (min + max + 1) >>> 1;
            if (c == 0) {
                out[3 * k] = 0f;
                out[3 * k + 1] = Float.POSITIVE_INFINITY;
                out[3 * k + 2] = t[1];
            } else {
                out[3 * k] = c - 1;
                out[3 * k + 1] = t[c];
                out[3 * k + 2] = t[c + 1];
            }
        }
        return out;
    }

    private static float[] concat(float[] a, float[] b) {
        float[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
