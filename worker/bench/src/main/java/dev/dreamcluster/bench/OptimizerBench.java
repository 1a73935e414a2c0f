package dev.dreamcluster.bench;

import dev.dreamcluster.config.OptimizerName;
import dev.dreamcluster.optim.Optimizer;
import dev.dreamcluster.optim.OptimizerHyper;
import dev.dreamcluster.optim.TensorSlice;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * One optimizer step over a 16M-element tensor (one of the sizes of an SD UNet's largest tensors is
 * 13M; 16M keeps every kernel out of cache). Score: steps per second; M params/s = score * 16.78.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
public class OptimizerBench {
    public static final int N = 16 * 1024 * 1024;

    @Param({"adamw", "adamw8bit", "lion", "lion8bit"})
    public String optimizer;

    /** 0 means every core. */
    @Param({"1", "0"})
    public int threads;

    float[] params;
    float[] grads;
    Optimizer opt;

    @Setup(Level.Trial)
    public void setUp() {
        OptimizerName name = OptimizerName.parse(optimizer, "bench");
        params = BenchData.params(N);
        grads = BenchData.grads(N);
        int t = threads == 0 ? Runtime.getRuntime().availableProcessors() : threads;
        opt = Optimizer.create(new OptimizerHyper(name, 0.9, name.isLion() ? 0.99 : 0.999, 1e-8, 0.01),
                List.of(TensorSlice.whole("w", N)), t);
        opt.step(params, grads, 1e-4); // first step allocates nothing new, but touches all state pages
    }

    @Benchmark
    public void step() {
        opt.step(params, grads, 1e-4);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        opt.close();
    }

    /** Deterministic inputs shared by every benchmark. */
    static final class BenchData {
        static float[] params(int n) {
            SplittableRandom r = new SplittableRandom(1);
            float[] a = new float[n];
            for (int i = 0; i < n; i++) {
                a[i] = (float) (r.nextGaussian() * 0.02);
            }
            return a;
        }

        static float[] grads(int n) {
            SplittableRandom r = new SplittableRandom(2);
            float[] a = new float[n];
            for (int i = 0; i < n; i++) {
                a[i] = (float) (r.nextGaussian() * Math.pow(10, -3 - r.nextInt(3)));
            }
            return a;
        }
    }
}
