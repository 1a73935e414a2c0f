package dev.dreamcluster.bench;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
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
 * The baseline a DJL user would write: the same AdamW update as NDArray in-place operations on the
 * PyTorch engine (CPU), over the same 16M elements. Temporaries (g*(1-b1), g*g, the denominator, the
 * update) are created and freed every step, as that code would do. libtorch's intra-op threads are
 * set through DJL's {@code ai.djl.pytorch.num_threads} before the engine starts (one JVM per fork).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
public class DjlAdamWBench {
    /** 0 means every core. */
    @Param({"1", "0"})
    public int threads;

    NDManager manager;
    NDArray p;
    NDArray g;
    NDArray m;
    NDArray v;
    long t;

    @Setup(Level.Trial)
    public void setUp() {
        int n = threads == 0 ? Runtime.getRuntime().availableProcessors() : threads;
        System.setProperty("ai.djl.pytorch.num_threads", Integer.toString(n));
        System.setProperty("ai.djl.pytorch.num_interop_threads", "1");
        manager = NDManager.newBaseManager("PyTorch");
        Shape shape = new Shape(OptimizerBench.N);
        p = manager.create(OptimizerBench.BenchData.params(OptimizerBench.N), shape);
        g = manager.create(OptimizerBench.BenchData.grads(OptimizerBench.N), shape);
        m = manager.zeros(shape);
        v = manager.zeros(shape);
        step();
    }

    @Benchmark
    public void step() {
        double lr = 1e-4;
        double b1 = 0.9;
        double b2 = 0.999;
        double eps = 1e-8;
        double wd = 0.01;
        t++;
        double bc1 = 1 - Math.pow(b1, t);
        double bc2 = 1 - Math.pow(b2, t);
        try (NDManager step = manager.newSubManager()) {
            p.muli(1 - lr * wd);
            NDArray gm = g.mul(1 - b1);
            gm.attach(step);
            m.muli(b1).addi(gm);
            NDArray gg = g.mul(g);
            gg.attach(step);
            v.muli(b2).addi(gg.muli(1 - b2));
            NDArray denom = v.sqrt();
            denom.attach(step);
            denom.divi(Math.sqrt(bc2)).addi(eps);
            NDArray update = m.div(denom);
            update.attach(step);
            p.subi(update.muli(lr / bc1));
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        manager.close();
    }
}
