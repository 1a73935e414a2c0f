package dev.dreamcluster.optim;

import static dev.dreamcluster.optim.Bits.assertBitsEqual;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dreamcluster.config.OptimizerName;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.api.Test;

/**
 * ZeRO-1 sharding: 1 shard vs several 256-aligned shards (and any thread count) give identical bits;
 * state saved from one layout, re-sharded and loaded into another continues bit-identically.
 */
class ShardingTest {
    /** Mixed sizes: fp32-fallback tensors (< 4096), exact blocks, partial last blocks. */
    static final List<ShardPlanner.Tensor> TENSORS = List.of(
            new ShardPlanner.Tensor("a", 5000), new ShardPlanner.Tensor("b", 300), new ShardPlanner.Tensor("c", 70_001),
            new ShardPlanner.Tensor("d", 4096), new ShardPlanner.Tensor("e", 1000), new ShardPlanner.Tensor("f", 9000));
    static final int TOTAL = TENSORS.stream().mapToInt(t -> (int) t.numel()).sum();

    static OptimizerHyper hyper(OptimizerName n) {
        return new OptimizerHyper(n, 0.9, n.isLion() ? 0.99 : 0.999, 1e-8, 0.01);
    }

    static float[][] data(int steps) {
        SplittableRandom rnd = new SplittableRandom(3);
        float[][] d = new float[steps + 1][TOTAL];
        for (float[] row : d) {
            for (int i = 0; i < TOTAL; i++) {
                row[i] = (float) (rnd.nextGaussian() * Math.pow(10, -rnd.nextInt(5)));
            }
        }
        return d; // row 0: params, rows 1..: grads
    }

    /** Runs steps [from, to) on every shard of {@code plan}, scattering/gathering to the global flat arrays. */
    static void run(List<Optimizer> shards, List<List<TensorSlice>> plan, float[] params, float[][] data, int from, int to) {
        for (int t = from; t < to; t++) {
            for (int r = 0; r < shards.size(); r++) {
                Optimizer opt = shards.get(r);
                float[] p = new float[opt.length()];
                float[] g = new float[opt.length()];
                List<TensorSlice> slices = plan.get(r);
                for (int i = 0; i < slices.size(); i++) {
                    int global = globalOffset(slices.get(i));
                    System.arraycopy(params, global, p, opt.offset(i), slices.get(i).length());
                    System.arraycopy(data[t + 1], global, g, opt.offset(i), slices.get(i).length());
                }
                opt.step(p, g, 1e-3 * (1 + t % 3));
                for (int i = 0; i < slices.size(); i++) {
                    System.arraycopy(p, opt.offset(i), params, globalOffset(slices.get(i)), slices.get(i).length());
                }
            }
        }
    }

    static int globalOffset(TensorSlice s) {
        int off = 0;
        for (ShardPlanner.Tensor t : TENSORS) {
            if (t.name().equals(s.name())) {
                return off + (int) s.start();
            }
            off += (int) t.numel();
        }
        throw new IllegalArgumentException(s.name());
    }

    static List<Optimizer> create(OptimizerName n, List<List<TensorSlice>> plan, int threads) {
        List<Optimizer> l = new ArrayList<>();
        for (List<TensorSlice> slices : plan) {
            l.add(Optimizer.create(hyper(n), slices, threads));
        }
        return l;
    }

    @ParameterizedTest
    @EnumSource(OptimizerName.class)
    void shouldGiveIdenticalBitsForAnyShardAndThreadCount(OptimizerName name) {
        float[][] data = data(4);
        float[] one = data[0].clone();
        List<List<TensorSlice>> plan1 = ShardPlanner.plan(TENSORS, 1);
        List<Optimizer> single = create(name, plan1, 1);
        run(single, plan1, one, data, 0, 4);
        for (int world : new int[] {2, 3, 4, 7}) {
            float[] many = data[0].clone();
            List<List<TensorSlice>> plan = ShardPlanner.plan(TENSORS, world);
            run(create(name, plan, 2), plan, many, data, 0, 4);
            assertBitsEqual(one, many, name.key() + " with " + world + " shards");
        }
    }

    @ParameterizedTest
    @EnumSource(OptimizerName.class)
    void shouldContinueBitIdenticallyAfterSaveLoadAndReshard(OptimizerName name, @TempDir Path dir) {
        float[][] data = data(6);
        float[] reference = data[0].clone();
        List<List<TensorSlice>> plan2 = ShardPlanner.plan(TENSORS, 2);
        run(create(name, plan2, 1), plan2, reference, data, 0, 6);

        float[] resumed = data[0].clone();
        List<Optimizer> before = create(name, plan2, 1);
        run(before, plan2, resumed, data, 0, 3);
        List<OptimizerState> saved = new ArrayList<>();
        for (int r = 0; r < before.size(); r++) {
            OptimizerStateFile.write(before.get(r).state(), dir.resolve("rank" + r));
            saved.add(OptimizerStateFile.read(dir.resolve("rank" + r)));
        }
        List<List<TensorSlice>> plan3 = ShardPlanner.plan(TENSORS, 3);
        List<Optimizer> after = create(name, plan3, 2);
        for (int r = 0; r < 3; r++) {
            after.get(r).load(OptimizerState.reshard(saved, plan3.get(r)));
            assertEquals(3, after.get(r).stepCount());
        }
        run(after, plan3, resumed, data, 3, 6);
        assertBitsEqual(reference, resumed, name.key() + " resumed on 3 shards");
    }

    @Test
    void shouldPlanBalancedBlockAlignedContiguousShards() {
        for (int world = 1; world <= 8; world++) {
            List<List<TensorSlice>> plan = ShardPlanner.plan(TENSORS, world);
            assertEquals(world, plan.size());
            long covered = 0;
            long prevEnd = 0;
            for (List<TensorSlice> shard : plan) {
                long size = 0;
                for (TensorSlice s : shard) {
                    assertEquals(0, s.start() % 256, s.toString());
                    assertTrue(s.end() == s.numel() || s.length() % 256 == 0, s.toString());
                    assertEquals(prevEnd, globalOffset(s), "shards are contiguous in canonical order");
                    prevEnd = globalOffset(s) + s.length();
                    size += s.length();
                }
                covered += size;
                assertTrue(Math.abs(size - (double) TOTAL / world) <= 2 * 256, "rank holds " + size + " of " + TOTAL);
            }
            assertEquals(TOTAL, covered);
        }
    }

    @Test
    void shouldRejectSlicesNotAlignedToBlocks() {
        assertThrows(IllegalArgumentException.class, () -> new TensorSlice("x", 5000, 100, 256));
        assertThrows(IllegalArgumentException.class, () -> new TensorSlice("x", 5000, 0, 300));
        assertEquals(5000 - 4864, new TensorSlice("x", 5000, 4864, 136).length());
    }

    @Test
    void shouldRefuseTornStateFiles(@TempDir Path dir) throws Exception {
        try (Optimizer opt = Optimizer.create(hyper(OptimizerName.ADAMW8BIT), List.of(TensorSlice.whole("t", 5000)), 1)) {
            opt.step(new float[5000], data(1)[1], 1e-3);
            OptimizerStateFile.write(opt.state(), dir);
        }
        java.nio.file.Files.write(dir.resolve(OptimizerStateFile.DATA), new byte[] {1, 2, 3});
        dev.dreamcluster.config.ConfigError e = assertThrows(dev.dreamcluster.config.ConfigError.class, () -> OptimizerStateFile.read(dir));
        org.junit.jupiter.api.Assertions.assertTrue(e.getMessage().contains(OptimizerStateFile.DATA), e.getMessage());
    }
}
