package dev.dreamcluster.bench;

import dev.dreamcluster.config.OptimizerName;
import dev.dreamcluster.optim.Optimizer;
import dev.dreamcluster.optim.OptimizerHyper;
import dev.dreamcluster.optim.TensorSlice;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.options.Options;
import org.openjdk.jmh.runner.options.OptionsBuilder;
import org.openjdk.jmh.runner.options.TimeValue;

/**
 * Runs the optimizer benchmarks and prints the table docs/performance.md records:
 * {@code bin/bench optim-jmh [--quick] [--optimizers adamw,adamw8bit] [--no-djl]} (JMH, one fork per benchmark, not interleaved).
 */
public final class OptimJmhMain {
    private OptimJmhMain() {}

    public static void main(String[] args) throws Exception {
        List<String> argv = List.of(args);
        boolean quick = argv.contains("--quick");
        int at = argv.indexOf("--optimizers");
        String[] only = at >= 0 && at + 1 < argv.size() ? argv.get(at + 1).split(",") : null;
        OptionsBuilder builder = new OptionsBuilder();
        builder.include(OptimizerBench.class.getSimpleName());
        if (only != null) {
            builder.param("optimizer", only);
        }
        if (!argv.contains("--no-djl")) {
            builder.include(DjlAdamWBench.class.getSimpleName());
        }
        Options opts = builder
                .forks(1)
                .warmupIterations(quick ? 1 : 3)
                .warmupTime(TimeValue.seconds(quick ? 1 : 2))
                .measurementIterations(quick ? 2 : 5)
                .measurementTime(TimeValue.seconds(quick ? 1 : 2))
                .jvmArgsAppend("-Xmx8g", "-Dai.djl.offline=true", dev.dreamcluster.optim.kernel.Simd.JVM_FLAG,
                        dev.dreamcluster.optim.kernel.Simd.TRAP_LIMIT_FLAG)
                .build();
        Collection<RunResult> results = new Runner(opts).run();
        int cores = Runtime.getRuntime().availableProcessors();
        Map<String, double[]> mps = new LinkedHashMap<>();
        for (RunResult r : results) {
            String bench = r.getParams().getBenchmark();
            String name = bench.contains("Djl") ? "djl-ndarray-adamw" : r.getParams().getParam("optimizer");
            int threads = Integer.parseInt(r.getParams().getParam("threads"));
            double score = r.getPrimaryResult().getScore() * OptimizerBench.N / 1e6;
            double err = r.getPrimaryResult().getScoreError() * OptimizerBench.N / 1e6;
            mps.computeIfAbsent(name, k -> new double[4]);
            mps.get(name)[threads == 1 ? 0 : 2] = score;
            mps.get(name)[threads == 1 ? 1 : 3] = err;
        }
        System.out.printf("%nOptimizer step on a 16M-element fp32 tensor (%d cores, %s)%n", cores,
                System.getProperty("java.vm.name") + " " + System.getProperty("java.version"));
        System.out.printf("%-20s %22s %22s %14s%n", "optimizer", "1 thread (M params/s)",
                cores + " threads (M params/s)", "state B/param");
        for (var e : mps.entrySet()) {
            double[] v = e.getValue();
            String bytes = e.getKey().startsWith("djl") ? "8 (m, v)" : String.format("%.5f", stateBytesPerParam(e.getKey()));
            System.out.printf("%-20s %14.0f +- %-5.0f %14.0f +- %-5.0f %14s%n", e.getKey(), v[0], v[1], v[2], v[3], bytes);
        }
        double[] adamw = mps.get("adamw");
        double[] djl = mps.get("djl-ndarray-adamw");
        double[] q8 = mps.get("adamw8bit");
        if (adamw != null && djl != null && q8 != null) {
            System.out.printf("%nJava AdamW / DJL baseline: %.2fx (1 thread), %.2fx (%d threads)   target >= 1.5x%n",
                    adamw[0] / djl[0], adamw[2] / djl[2], cores);
            System.out.printf("AdamW8bit / Java AdamW:    %.2fx (1 thread), %.2fx (%d threads)   target >= 0.6x%n",
                    q8[0] / adamw[0], q8[2] / adamw[2], cores);
        }
    }

    /** Measured from the optimizer's own arrays for one 16M tensor. */
    static double stateBytesPerParam(String name) {
        OptimizerName n = OptimizerName.parse(name, "bench");
        try (Optimizer o = Optimizer.create(new OptimizerHyper(n, 0.9, 0.999, 1e-8, 0.01),
                List.of(TensorSlice.whole("w", OptimizerBench.N)), 1)) {
            return (double) o.stateBytes() / OptimizerBench.N;
        }
    }
}
