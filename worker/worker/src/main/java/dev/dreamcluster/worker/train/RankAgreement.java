package dev.dreamcluster.worker.train;

import dev.dreamcluster.collective.Collective;
import dev.dreamcluster.config.ConfigError;

/**
 * Checks that every rank holds the same value before training starts: a seed drawn per process
 * ({@code seed: -1} while each worker still reads train.json itself) would make the ranks draw
 * different batches and noise, silently breaking the N-vs-1 equivalence. Costs one broadcast and
 * one all-reduce of 4 floats; every rank fails together.
 */
public final class RankAgreement {
    private RankAgreement() {}

    public static void check(Collective c, String key, long value) {
        if (c == null || c.worldSize() < 2) {
            return;
        }
        float[] mine = chunks(value);
        float[] root = mine.clone();
        c.broadcast(root, 4, 0); // 16-bit chunks: exact in float32
        float[] differs = {java.util.Arrays.equals(mine, root) ? 0f : 1f};
        c.allReduce(differs, 1);
        if (differs[0] > 0) {
            throw new ConfigError(key + ": the workers disagree (rank " + c.rank() + " has " + value
                    + "); with seed -1 each worker draws its own, so give a fixed seed for multi-worker runs");
        }
    }

    /**
     * Every rank's weights are the same bits: each rank's CRC-32 of every group's flat fp32 parameters
     * (the host array, or a copy down from the device), gathered in one all-reduce of 2 floats per rank.
     * Ranks that diverged (a write-back of stale values, a flipped bit, a kernel that differs between
     * machines) would each go on training a different model while reporting one run: the run halts
     * with the first rank that differs from rank 0. Cost: one pass over the parameters; run at every
     * checkpoint and at the end.
     */
    public static void checkWeights(Collective c, java.util.List<dev.dreamcluster.worker.train.grad.ParamGroup> groups, int step) {
        if (c == null || c.worldSize() < 2) {
            return;
        }
        checkWeights(c, crc(groups), step);
    }

    /** CRC-32 of every group's flat fp32 parameters, tensor by tensor in layout order. */
    static long crc(java.util.List<dev.dreamcluster.worker.train.grad.ParamGroup> groups) {
        java.util.zip.CRC32 crc = new java.util.zip.CRC32();
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(1 << 16).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        for (var g : groups) {
            float[] host = g.store().hostParams();
            for (int i = 0; i < g.names().size(); i++) {
                float[] v = host != null ? null : g.store().values(i);
                int from = host != null ? g.layout().offsets()[i] : 0;
                int n = host != null ? (int) g.layout().trainable().get(i).numel() : v.length;
                float[] src = host != null ? host : v;
                for (int k = 0; k < n; k += b.capacity() / 4) {
                    int m = Math.min(b.capacity() / 4, n - k);
                    b.clear();
                    b.asFloatBuffer().put(src, from + k, m);
                    b.limit(m * 4);
                    crc.update(b);
                }
            }
        }
        return crc.getValue();
    }

    /** Every rank's {@code mine} against rank 0's; a difference halts every rank. */
    static void checkWeights(Collective c, long mine, int step) {
        float[] all = new float[2 * c.worldSize()];
        all[2 * c.rank()] = mine & 0xFFFF;
        all[2 * c.rank() + 1] = (mine >>> 16) & 0xFFFF;
        c.allReduce(all, all.length);
        long root = (long) all[0] | (long) all[1] << 16;
        for (int r = 1; r < c.worldSize(); r++) {
            long theirs = (long) all[2 * r] | (long) all[2 * r + 1] << 16;
            if (theirs != root) {
                throw new dev.dreamcluster.run.TrainingHalted("step " + step + ": the ranks' weights diverged: rank " + r
                        + "'s parameters differ from rank 0's (CRC-32 " + Long.toHexString(theirs) + " against " + Long.toHexString(root)
                        + "); resume from the last checkpoint");
            }
        }
    }

    private static float[] chunks(long v) {
        return new float[] {(v >>> 48) & 0xFFFF, (v >>> 32) & 0xFFFF, (v >>> 16) & 0xFFFF, v & 0xFFFF};
    }
}
