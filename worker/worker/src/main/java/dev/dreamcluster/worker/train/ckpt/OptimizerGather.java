package dev.dreamcluster.worker.train.ckpt;

import dev.dreamcluster.collective.Collective;
import dev.dreamcluster.worker.train.grad.ParamGroup;
import dev.dreamcluster.optim.OptimizerHyper;
import dev.dreamcluster.optim.OptimizerState;
import dev.dreamcluster.optim.ShardPlanner;
import dev.dreamcluster.optim.TensorSlice;
import dev.dreamcluster.optim.TensorState;
import java.util.ArrayList;
import java.util.List;

/**
 * Gathers one component's ZeRO-1 optimizer shards to a root rank over the collective, as torch's
 * ZeroRedundancyOptimizer.consolidate_state_dict does, so a checkpoint is complete on one node and
 * needs no file system the workers share. Every rank calls {@link #toRoot} at the same point.
 *
 * <p>Every rank knows every rank's slices (the shard plan is deterministic) and each slice's state
 * kind, so sizes are never exchanged: rank r broadcasts its packed shard, one rank after another;
 * memory beyond the root's result is one shard's buffer at a time. Packing, per shard:
 *
 * <pre>
 *   [step & 0xffff, step >>> 16]  then per slice, in shard order:
 *   m, v, absmax1, absmax2        float32 as they are (those that the kind has)
 *   c1, c2                        uint8 codes, two per float as the exact integer lo | hi << 8
 * </pre>
 *
 * Codes travel as small integers rather than raw bit patterns so that no code pair can form a NaN.
 */
public final class OptimizerGather {
    private OptimizerGather() {}

    /**
     * On {@code root}: the whole optimizer state as one slice per tensor (the world-size-1 layout,
     * re-sharded on load to any worker count). Elsewhere, and for a component without optimizer: null.
     */
    public static OptimizerState toRoot(ParamGroup p, Collective c, int root) {
        if (p.hyper() == null || p.isEmpty()) {
            return null;
        }
        int rank = c == null ? 0 : c.rank();
        List<OptimizerState> parts = new ArrayList<>();
        List<List<TensorSlice>> plan = p.layout().shards();
        for (int r = 0; r < plan.size(); r++) {
            List<TensorSlice> slices = plan.get(r);
            if (slices.isEmpty()) {
                continue;
            }
            float[] buf = new float[packedLength(p.hyper(), slices)];
            if (r == rank) {
                pack(p.store().optimizerState(), buf);
            }
            if (c != null && c.worldSize() > 1) {
                c.broadcast(buf, buf.length, r);
            }
            if (rank == root) {
                parts.add(unpack(p.hyper(), slices, buf));
            }
        }
        if (rank != root) {
            return null;
        }
        List<ShardPlanner.Tensor> tensors = new ArrayList<>();
        for (TensorSlice s : p.layout().wholeSlices()) {
            tensors.add(new ShardPlanner.Tensor(s.name(), s.numel()));
        }
        return OptimizerState.reshard(parts, ShardPlanner.plan(tensors, 1).get(0));
    }

    static int packedLength(OptimizerHyper hyper, List<TensorSlice> slices) {
        long n = 2;
        for (TensorSlice s : slices) {
            TensorState.Kind kind = TensorState.kindFor(hyper.name(), s.numel());
            n += switch (kind) {
                case FP32_2 -> 2L * s.length();
                case FP32_1 -> s.length();
                case Q8_2 -> 2L * s.blocks() + 2L * codeFloats(s.length());
                case Q8_1 -> s.blocks() + codeFloats(s.length());
            };
        }
        return Math.toIntExact(n);
    }

    private static int codeFloats(int codes) {
        return (codes + 1) / 2;
    }

    static void pack(OptimizerState state, float[] buf) {
        if (state.step() < 0 || state.step() > 0xffffffffL) {
            throw new IllegalStateException("optimizer step " + state.step() + " does not fit the 32-bit gather header");
        }
        buf[0] = state.step() & 0xffff;
        buf[1] = (state.step() >>> 16) & 0xffff;
        int at = 2;
        for (TensorState t : state.tensors()) {
            at = putFloats(t.m, buf, at);
            at = putFloats(t.v, buf, at);
            at = putFloats(t.absmax1, buf, at);
            at = putFloats(t.absmax2, buf, at);
            at = putCodes(t.c1, buf, at);
            at = putCodes(t.c2, buf, at);
        }
    }

    static OptimizerState unpack(OptimizerHyper hyper, List<TensorSlice> slices, float[] buf) {
        long step = (long) buf[0] | (long) buf[1] << 16;
        int at = 2;
        List<TensorState> out = new ArrayList<>(slices.size());
        for (TensorSlice s : slices) {
            TensorState t = TensorState.zeros(s, TensorState.kindFor(hyper.name(), s.numel()));
            at = getFloats(buf, at, t.m);
            at = getFloats(buf, at, t.v);
            at = getFloats(buf, at, t.absmax1);
            at = getFloats(buf, at, t.absmax2);
            at = getCodes(buf, at, t.c1);
            at = getCodes(buf, at, t.c2);
            out.add(t);
        }
        return new OptimizerState(hyper, step, out);
    }

    private static int putFloats(float[] a, float[] buf, int at) {
        if (a == null) {
            return at;
        }
        System.arraycopy(a, 0, buf, at, a.length);
        return at + a.length;
    }

    private static int getFloats(float[] buf, int at, float[] a) {
        if (a == null) {
            return at;
        }
        System.arraycopy(buf, at, a, 0, a.length);
        return at + a.length;
    }

    private static int putCodes(byte[] a, float[] buf, int at) {
        if (a == null) {
            return at;
        }
        for (int i = 0; i < a.length; i += 2) {
            int hi = i + 1 < a.length ? a[i + 1] & 0xff : 0;
            buf[at++] = (a[i] & 0xff) | hi << 8;
        }
        return at;
    }

    private static int getCodes(float[] buf, int at, byte[] a) {
        if (a == null) {
            return at;
        }
        for (int i = 0; i < a.length; i += 2) {
            int v = (int) buf[at++];
            a[i] = (byte) v;
            if (i + 1 < a.length) {
                a[i + 1] = (byte) (v >>> 8);
            }
        }
        return at;
    }
}
