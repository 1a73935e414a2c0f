package dev.dreamcluster.worker.train.grad.device;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.dreamcluster.config.OptimizerName;
import dev.dreamcluster.optim.OptimizerHyper;
import dev.dreamcluster.optim.TensorSlice;
import dev.dreamcluster.optim.TensorState;
import dev.dreamcluster.optim.kernel.BnbScalars;
import dev.dreamcluster.optim.kernel.QuantMap;
import dev.dreamcluster.worker.model.Tensors;
import java.util.ArrayList;
import java.util.List;

/**
 * bitsandbytes AdamW8bit and Lion8bit ({@link dev.dreamcluster.optim.AdamW8bit},
 * {@link dev.dreamcluster.optim.Lion8bit}) on the device.
 *
 * <p>State of the 8-bit slices (tensors of at least 4096 elements): codes as uint8 [rows, 256] tensors,
 * one row per 256-element block (a partial block's padding lanes hold the codes bitsandbytes pads
 * with, 128 for m and 0 for v, and never change), absmax as fp32 [rows]; see {@link BlockLayout} for
 * which block is which row. Smaller tensors keep fp32 state (bitsandbytes' 32-bit kernels), gathered
 * through a fixed int64 index of their elements.
 *
 * <p>Per block chunk, as the Java kernel: dequantise m and v with last step's absmax, update them in
 * fp32 (a non-finite gradient resets the element's m and v to 0 and leaves p untouched), update p from
 * them, take each block's new absmax (padding lanes included, NaN lanes skipped), re-quantise.
 * Elementwise ops per element per step: AdamW8bit 69 (+2 with weight decay), Lion8bit 41 (+1); a
 * gathered chunk adds 8 (index, mask, gathers, scatter) and 2 or 1 to keep the padding codes.
 */
final class DeviceBlockwise8bit extends DeviceOptimizer {
    private static final int B = BlockLayout.B;

    private final boolean adam;
    private final BlockLayout layout;
    private final BlockQuantizer quant;
    private final NDArray c1;
    private final NDArray c2;
    private final NDArray a1;
    private final NDArray a2;
    private final NDArray[] chunkSrc;
    private final NDArray[] chunkValidM1;
    private final NDArray lanes;
    private final NDArray zero;
    private final NDArray one;
    private final NDArray maxFinite;
    private final NDArray pad1;
    private final NDArray pad2;
    private final long[] fbOffset;
    private final long fbLength;
    private final NDArray fbIndex;
    private final NDArray fm;
    private final NDArray fv;
    private final long gatherRows;

    DeviceBlockwise8bit(OptimizerHyper hyper, List<TensorSlice> slices, NDManager deviceManager, Tuning tuning) {
        super(hyper, slices, deviceManager, tuning);
        this.adam = hyper.name() == OptimizerName.ADAMW8BIT;
        int n = slices.size();
        boolean[] q8 = new boolean[n];
        fbOffset = new long[n];
        long fb = 0;
        for (int i = 0; i < n; i++) {
            TensorState.Kind kind = TensorState.kindFor(hyper.name(), slices.get(i).numel());
            q8[i] = kind == TensorState.Kind.Q8_1 || kind == TensorState.Kind.Q8_2;
            fbOffset[i] = q8[i] ? -1 : fb;
            fb += q8[i] ? 0 : slices.get(i).length();
        }
        this.fbLength = fb;
        this.layout = new BlockLayout(this.slices, offsets, q8, Math.max(1, tuning.chunkElements() / B), tuning.fastMinBlocks());
        this.zero = keep(scalar(0f));
        this.one = keep(scalar(1f));
        this.maxFinite = keep(scalar(Float.MAX_VALUE));
        this.pad1 = keep(manager.full(new Shape(), QuantMap.SIGNED_PAD_CODE, DataType.UINT8, manager.getDevice()));
        this.pad2 = keep(manager.full(new Shape(), 0, DataType.UINT8, manager.getDevice()));
        try (NDArray l = manager.arange(0, B, 1, DataType.INT64)) {
            this.lanes = keep(l.reshape(1, B));
        }
        long rows = layout.rows;
        this.quant = rows > 0 ? new BlockQuantizer(manager) : null;
        this.c1 = rows > 0 ? codes(rows) : null;
        this.c2 = rows > 0 && adam ? codes(rows) : null;
        this.a1 = rows > 0 ? keep(DeviceCopy.zeros(manager, rows, DataType.FLOAT32)) : null;
        this.a2 = rows > 0 && adam ? keep(DeviceCopy.zeros(manager, rows, DataType.FLOAT32)) : null;
        for (int i = 0; i < n; i++) {
            if (layout.partialRow[i] >= 0) {
                int valid = slices.get(i).length() % B;
                c1.set(new NDIndex().addIndices(layout.partialRow[i]).addSliceDim(valid, B), pad1); // m pads with code 128
            }
        }
        List<BlockLayout.Chunk> chunks = layout.chunks;
        this.chunkSrc = new NDArray[chunks.size()];
        this.chunkValidM1 = new NDArray[chunks.size()];
        long gathered = 0;
        for (int ci = 0; ci < chunks.size(); ci++) {
            BlockLayout.Chunk c = chunks.get(ci);
            if (!c.fast()) {
                long[] validM1 = new long[c.rows()];
                for (int j = 0; j < validM1.length; j++) {
                    validM1[j] = c.valid()[j] - 1;
                }
                chunkSrc[ci] = keep(Tensors.of(manager, c.src(), new Shape(c.rows(), 1)));
                chunkValidM1[ci] = keep(Tensors.of(manager, validM1, new Shape(c.rows(), 1)));
                gathered += c.rows();
            }
        }
        this.gatherRows = gathered;
        if (fbLength > 0) {
            this.fbIndex = keep(DeviceCopy.zeros(manager, fbLength, DataType.INT64));
            for (int i = 0; i < n; i++) {
                if (fbOffset[i] >= 0) {
                    long[] idx = new long[slices.get(i).length()];
                    for (int j = 0; j < idx.length; j++) {
                        idx[j] = offsets[i] + j;
                    }
                    try (NDArray piece = Tensors.of(manager, idx, new Shape(idx.length))) {
                        fbIndex.set(new NDIndex().addSliceDim(fbOffset[i], fbOffset[i] + idx.length), piece);
                    }
                }
            }
            this.fm = keep(DeviceCopy.zeros(manager, fbLength, DataType.FLOAT32));
            this.fv = adam ? keep(DeviceCopy.zeros(manager, fbLength, DataType.FLOAT32)) : null;
        } else {
            this.fbIndex = null;
            this.fm = null;
            this.fv = null;
        }
    }

    private NDArray codes(long rows) {
        try (NDArray flat = DeviceCopy.zeros(manager, rows * B, DataType.UINT8)) {
            return keep(flat.reshape(rows, B));
        }
    }

    @Override
    protected void prepare(double lr, long t) {
        if (adam && layout.rows > 0) {
            float epsC2 = scalars(lr, t).epsTimesCorrection2();
            if (!(epsC2 > 0)) {
                throw new IllegalArgumentException("eps * correction2 underflowed to " + epsC2 + ": use a larger eps");
            }
        }
    }

    private BnbScalars scalars(double lr, long t) {
        return BnbScalars.of(lr, hyper.beta1(), hyper.beta2(), adam ? hyper.eps() : 0.0, hyper.weightDecay(), t);
    }

    /** The step's scalars on the device (closed with the step's scope). */
    private final class Consts {
        final NDArray b1;
        final NDArray b2;
        final NDArray omb1;
        final NDArray omb2;
        final NDArray stepSize;
        final NDArray epsC2;
        final NDArray lr;
        final NDArray wdf;

        Consts(BnbScalars s) {
            b1 = scalar(s.beta1());
            b2 = scalar(s.beta2());
            omb1 = scalar(s.oneMinusBeta1());
            omb2 = scalar(s.oneMinusBeta2());
            stepSize = scalar(s.stepSize());
            epsC2 = scalar(s.epsTimesCorrection2());
            lr = scalar(s.lr());
            wdf = s.decay() && s.wdFactor() != 1.0f ? scalar(s.wdFactor()) : null;
        }
    }

    @Override
    protected void update(NDArray params, NDArray grads, long from, double lr, long t) {
        Consts k = new Consts(scalars(lr, t));
        List<BlockLayout.Chunk> chunks = layout.chunks;
        for (int ci = 0; ci < chunks.size(); ci++) {
            try (NDScope scope = new NDScope()) {
                scope.suppressNotUsedWarning();
                chunk(ci, params, grads, from, k);
            }
        }
        if (fbLength > 0) {
            NDArray pv = range(params, from, from + length);
            NDArray gv = range(grads, from, from + length);
            for (long a = 0; a < fbLength; a += tuning.chunkElements()) {
                long b = Math.min(fbLength, a + tuning.chunkElements());
                try (NDScope scope = new NDScope()) {
                    scope.suppressNotUsedWarning();
                    NDArray idx = range(fbIndex, a, b);
                    NDArray p = pv.take(idx);
                    NDArray g = gv.take(idx);
                    if (adam) {
                        Kernels.adamFallback(p, g, range(fm, a, b), range(fv, a, b), k.b1, k.omb1, k.b2, k.omb2, k.stepSize,
                                k.epsC2, k.wdf);
                    } else {
                        Kernels.lionFallback(p, g, range(fm, a, b), k.wdf, k.b1, k.omb1, k.lr, k.b2, k.omb2);
                    }
                    pv.set(new NDIndex("{}", idx), p);
                }
            }
        }
    }

    /** One chunk of blocks: a [rows, 256] view of the flat buffers, or a gathered copy scattered back. */
    private void chunk(int ci, NDArray params, NDArray grads, long from, Consts k) {
        BlockLayout.Chunk c = layout.chunks.get(ci);
        if (c.fast()) {
            long a = from + c.src0();
            long b = a + (long) B * c.rows();
            NDArray p = range(params, a, b).reshape(c.rows(), B);
            NDArray g = range(grads, a, b).reshape(c.rows(), B);
            blocks(p, g, c.row0(), c.rows(), null, k);
            return;
        }
        NDArray pv = range(params, from + c.lo(), from + c.hi());
        NDArray gv = range(grads, from + c.lo(), from + c.hi());
        NDArray validM1 = chunkValidM1[ci];
        // element index of each lane; padding lanes repeat their block's last element (clamped)
        NDArray idx = lanes.minimum(validM1).addi(chunkSrc[ci]);
        NDArray valid = lanes.lte(validM1);
        NDArray p = pv.take(idx);
        NDArray g;
        try (NDArray raw = gv.take(idx)) {
            g = Kernels.where(valid, raw, zero); // padding lanes: g = 0, as bitsandbytes pads
        }
        blocks(p, g, c.row0(), c.rows(), valid, k);
        // padding lanes write their block's last element again, with that element's value
        try (NDArray last = p.gather(validM1, 1); NDArray out = Kernels.where(valid, p, last)) {
            pv.set(new NDIndex("{}", idx), out);
        }
    }

    private void blocks(NDArray p, NDArray g, long row0, int rows, NDArray valid, Consts k) {
        NDIndex r = new NDIndex().addSliceDim(row0, row0 + rows);
        NDArray am1 = a1.get(r).reshape(rows, 1);
        if (adam) {
            adamBlocks(p, g, r, rows, am1, a2.get(r).reshape(rows, 1), valid, k);
        } else {
            lionBlocks(p, g, r, rows, am1, valid, k);
        }
    }

    /**
     * Blockwise8bitKernel.adam: v = deq(c2)*b2 + (omb2*g)*g; m = deq(c1)*b1 + omb1*g; both 0 where g is
     * not finite; p = (p + stepSize*(m/(sqrt(v) + epsC2))) * (finite ? wdf : 1).
     */
    private void adamBlocks(NDArray p, NDArray g, NDIndex r, int rows, NDArray am1, NDArray am2, NDArray valid,
            Consts k) {
        NDArray v = quant.dequantize(c2.get(r), false, am2).muli(k.b2);
        try (NDArray t = g.mul(k.omb2)) {
            v.addi(t.muli(g));
        }
        NDArray m = quant.dequantize(c1.get(r), true, am1).muli(k.b1);
        try (NDArray t = g.mul(k.omb1)) {
            m.addi(t);
        }
        NDArray finite;
        try (NDArray ag = g.abs()) {
            finite = ag.lte(maxFinite);
        }
        NDArray ms;
        NDArray vs;
        try (m; v) {
            ms = Kernels.where(finite, m, zero);
            vs = Kernels.where(finite, v, zero);
        }
        // a reset lane: m = v = 0, so the update is stepSize * (0 / epsC2) = -0 and p + -0 = p
        try (NDArray den = Kernels.sqrt(vs); NDArray q = ms.div(den.addi(k.epsC2))) {
            p.addi(q.muli(k.stepSize));
        }
        if (k.wdf != null) {
            try (NDArray decay = Kernels.where(finite, k.wdf, one)) {
                p.muli(decay);
            }
        }
        finite.close();
        NDArray max1;
        try (NDArray abs = ms.abs()) {
            max1 = maxSkippingNaN(abs);
        }
        NDArray max2 = maxSkippingNaN(vs); // v >= 0 or NaN: |v| = v
        NDArray q1;
        NDArray q2;
        try (ms; vs) {
            q1 = quant.quantizeSigned(ms, max1);
            q2 = quant.quantizeUnsigned(vs, max2);
        }
        store(c1, r, q1, valid, pad1);
        store(c2, r, q2, valid, pad2);
        a1.set(r, max1.reshape(rows));
        a2.set(r, max2.reshape(rows));
    }

    /** Blockwise8bitKernel.lion: p = p*wdf (wd > 0); p = p - lr*sign(m*b1 + omb1*g); m = m*b2 + omb2*g. */
    private void lionBlocks(NDArray p, NDArray g, NDIndex r, int rows, NDArray am1, NDArray valid, Consts k) {
        NDArray m = quant.dequantize(c1.get(r), true, am1);
        if (k.wdf != null) {
            p.muli(k.wdf);
        }
        try (NDArray c = m.mul(k.b1); NDArray t = g.mul(k.omb1)) {
            p.subi(c.addi(t).signi().muli(k.lr));
        }
        m.muli(k.b2);
        try (NDArray t = g.mul(k.omb2)) {
            m.addi(t);
        }
        NDArray max1;
        try (NDArray abs = m.abs()) {
            max1 = maxSkippingNaN(abs);
        }
        NDArray q1;
        try (m) {
            q1 = quant.quantizeSigned(m, max1);
        }
        store(c1, r, q1, valid, pad1);
        a1.set(r, max1.reshape(rows));
    }

    /** Per-row maximum of {@code x} (>= 0 or NaN), NaN lanes skipped as the Java kernels' compares do. 3 ops. */
    private NDArray maxSkippingNaN(NDArray x) {
        try (NDArray ok = x.gte(zero); NDArray clean = Kernels.where(ok, x, zero)) {
            return clean.max(new int[] {1}, true);
        }
    }

    /** New codes into the state rows; padding lanes keep their fixed code. */
    private static void store(NDArray state, NDIndex r, NDArray codes, NDArray valid, NDArray pad) {
        try (codes) {
            if (valid == null) {
                state.set(r, codes);
            } else {
                try (NDArray kept = Kernels.where(valid, codes, pad)) {
                    state.set(r, kept);
                }
            }
        }
    }

    @Override
    protected List<TensorState> download() {
        List<TensorState> out = new ArrayList<>(slices.size());
        NDArray flat1 = c1 == null ? null : c1.reshape(-1);
        NDArray flat2 = c2 == null ? null : c2.reshape(-1);
        for (int i = 0; i < slices.size(); i++) {
            TensorSlice s = slices.get(i);
            if (fbOffset[i] >= 0) {
                float[] m = read(fm, fbOffset[i], s.length());
                float[] v = adam ? read(fv, fbOffset[i], s.length()) : null;
                out.add(new TensorState(s, adam ? TensorState.Kind.FP32_2 : TensorState.Kind.FP32_1, m, v, null, null, null,
                        null));
                continue;
            }
            byte[] codes1 = new byte[s.length()];
            float[] max1 = new float[s.blocks()];
            copyOut(i, flat1, a1, codes1, max1);
            byte[] codes2 = null;
            float[] max2 = null;
            if (adam) {
                codes2 = new byte[s.length()];
                max2 = new float[s.blocks()];
                copyOut(i, flat2, a2, codes2, max2);
            }
            out.add(new TensorState(s, adam ? TensorState.Kind.Q8_2 : TensorState.Kind.Q8_1, null, null, codes1, codes2,
                    max1, max2));
        }
        return out;
    }

    private void copyOut(int i, NDArray flatCodes, NDArray absmax, byte[] codes, float[] max) {
        int full = layout.fullBlocks[i];
        long bytes = tuning.copyChunkBytes();
        if (full > 0) {
            DeviceCopy.download(flatCodes, layout.fullRow[i] * B, codes, 0, full * B, bytes);
            DeviceCopy.download(absmax, layout.fullRow[i], max, 0, full, bytes);
        }
        if (layout.partialRow[i] >= 0) {
            DeviceCopy.download(flatCodes, layout.partialRow[i] * B, codes, full * B, codes.length - full * B, bytes);
            DeviceCopy.download(absmax, layout.partialRow[i], max, full, 1, bytes);
        }
    }

    @Override
    protected void upload(List<TensorState> states) {
        NDArray flat1 = c1 == null ? null : c1.reshape(-1);
        NDArray flat2 = c2 == null ? null : c2.reshape(-1);
        for (int i = 0; i < states.size(); i++) {
            TensorState s = states.get(i);
            if (fbOffset[i] >= 0) {
                write(s.m, fm, fbOffset[i]);
                if (adam) {
                    write(s.v, fv, fbOffset[i]);
                }
                continue;
            }
            copyIn(i, s.c1, s.absmax1, flat1, a1);
            if (adam) {
                copyIn(i, s.c2, s.absmax2, flat2, a2);
            }
        }
    }

    private void copyIn(int i, byte[] codes, float[] max, NDArray flatCodes, NDArray absmax) {
        int full = layout.fullBlocks[i];
        long bytes = tuning.copyChunkBytes();
        if (full > 0) {
            DeviceCopy.upload(codes, 0, flatCodes, layout.fullRow[i] * B, full * B, bytes);
            DeviceCopy.upload(max, 0, absmax, layout.fullRow[i], full, bytes);
        }
        if (layout.partialRow[i] >= 0) { // valid lanes only: the padding codes stay
            DeviceCopy.upload(codes, full * B, flatCodes, layout.partialRow[i] * B, codes.length - full * B, bytes);
            DeviceCopy.upload(max, full, absmax, layout.partialRow[i], 1, bytes);
        }
    }

    @Override
    public long stateBytes() {
        int states = adam ? 2 : 1;
        long n = states * (layout.rows * B + 4 * layout.rows); // codes (padding lanes included) and absmax
        n += states * 4 * fbLength + 8 * fbLength; // fp32 fallback state and its index
        n += 16 * gatherRows + 8 * B; // gathered chunks' block offsets and counts, the lane index
        return n + (quant == null ? 0 : quant.bytes());
    }
}
