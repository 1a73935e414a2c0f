package dev.dreamcluster.optim;

import java.util.ArrayList;
import java.util.List;

/**
 * A shard's optimizer state: hyperparameters, the update count and one {@link TensorState} per slice,
 * in shard order. {@link #reshard} turns the states of any shard layout into those of another.
 */
public record OptimizerState(OptimizerHyper hyper, long step, List<TensorState> tensors) {
    public OptimizerState {
        tensors = List.copyOf(tensors);
    }

    /**
     * Cuts the union of {@code parts} (shards of one optimizer, same hyperparameters and step) into
     * {@code target} slices. Every target element must be covered by exactly one source slice. Since
     * both layouts cut tensors only at block boundaries, absmax blocks move whole.
     */
    public static OptimizerState reshard(List<OptimizerState> parts, List<TensorSlice> target) {
        if (parts.isEmpty()) {
            throw new IllegalArgumentException("no states to re-shard");
        }
        OptimizerState first = parts.get(0);
        for (OptimizerState p : parts) {
            if (!p.hyper().equals(first.hyper()) || p.step() != first.step()) {
                throw new IllegalArgumentException("shards disagree: " + p.hyper() + " step " + p.step() + " vs "
                        + first.hyper() + " step " + first.step());
            }
        }
        List<TensorState> out = new ArrayList<>(target.size());
        for (TensorSlice want : target) {
            TensorState.Kind kind = TensorState.kindFor(first.hyper().name(), want.numel());
            TensorState dst = TensorState.zeros(want, kind);
            long covered = 0;
            for (OptimizerState p : parts) {
                for (TensorState src : p.tensors()) {
                    if (!src.slice.name().equals(want.name())) {
                        continue;
                    }
                    if (src.slice.numel() != want.numel() || src.kind != kind) {
                        throw new IllegalArgumentException(want.name() + ": saved as " + src.slice.numel() + " elements ("
                                + src.kind + "), wanted " + want.numel() + " (" + kind + ")");
                    }
                    covered += copyOverlap(src, dst);
                }
            }
            if (covered != want.length()) {
                throw new IllegalArgumentException(want.name() + ": saved shards cover " + covered + " of the "
                        + want.length() + " elements of slice [" + want.start() + ", " + want.end() + ")");
            }
            out.add(dst);
        }
        return new OptimizerState(first.hyper(), first.step(), out);
    }

    /** Copies the overlap of two slices of one tensor; returns the elements copied. */
    private static long copyOverlap(TensorState src, TensorState dst) {
        long from = Math.max(src.slice.start(), dst.slice.start());
        long to = Math.min(src.slice.end(), dst.slice.end());
        if (from >= to) {
            return 0;
        }
        int n = (int) (to - from);
        int si = (int) (from - src.slice.start());
        int di = (int) (from - dst.slice.start());
        arr(src.m, si, dst.m, di, n);
        arr(src.v, si, dst.v, di, n);
        if (src.c1 != null) {
            System.arraycopy(src.c1, si, dst.c1, di, n);
        }
        if (src.c2 != null) {
            System.arraycopy(src.c2, si, dst.c2, di, n);
        }
        // both offsets are multiples of 256, so whole blocks move
        int sb = si / dev.dreamcluster.optim.kernel.QuantMap.BLOCK;
        int db = di / dev.dreamcluster.optim.kernel.QuantMap.BLOCK;
        int nb = (n + dev.dreamcluster.optim.kernel.QuantMap.BLOCK - 1) / dev.dreamcluster.optim.kernel.QuantMap.BLOCK;
        arr(src.absmax1, sb, dst.absmax1, db, nb);
        arr(src.absmax2, sb, dst.absmax2, db, nb);
        return n;
    }

    private static void arr(float[] src, int si, float[] dst, int di, int n) {
        if (src != null) {
            System.arraycopy(src, si, dst, di, n);
        }
    }
}
