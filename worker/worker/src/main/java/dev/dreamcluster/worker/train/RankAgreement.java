package dev.dreamcluster.worker.train;

import dev.dreamcluster.collective.Collective;
import dev.dreamcluster.config.ConfigError;

/**
 * Checks that every rank holds the same value before training starts: a seed drawn per process
 * ({@code seed: -1} while each worker still reads train.json itself) would make the ranks draw
 * different batches and noise, silently breaking the N-vs-1 equivalence. Costs one broadcast and
 * one all-reduce of 4 floats; every rank fails together.
 */
final class RankAgreement {
    private RankAgreement() {}

    static void check(Collective c, String key, long value) {
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

    private static float[] chunks(long v) {
        return new float[] {(v >>> 48) & 0xFFFF, (v >>> 32) & 0xFFFF, (v >>> 16) & 0xFFFF, v & 0xFFFF};
    }
}
