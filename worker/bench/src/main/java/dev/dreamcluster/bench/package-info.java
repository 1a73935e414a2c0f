/**
 * JMH benchmarks. {@link dev.dreamcluster.bench.OptimBenchMain} runs the optimizer benchmarks and
 * prints the table of docs/performance.md: M params/s per optimizer and thread count, the DJL NDArray AdamW
 * baseline, and the measured optimizer-state bytes per parameter. {@link dev.dreamcluster.bench.ScaleModel}
 * ({@code bin/bench scale}) is no benchmark: it prints the alpha-beta scale model of docs/scale.md.
 */
package dev.dreamcluster.bench;
