package dev.dreamcluster.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.config.Json;
import dev.dreamcluster.model.DiffusersFolder;
import dev.dreamcluster.safetensors.DType;
import dev.dreamcluster.model.Presets;
import dev.dreamcluster.worker.data.SyntheticDataset;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Stream;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code dreamcluster bench step}: real training steps of a preset model (random weights, a generated
 * dataset), each configuration a fresh {@code train} process: 1 worker (one process, no collective)
 * and N workers (an embedded cluster, the TCP ring), optionally again with one core taken by a
 * spinning thread. It reads every step's compute / comm / optimizer seconds from metrics.jsonl,
 * drops the warm-up steps, and prints medians, the communication share of the step, the N-worker
 * throughput against 1 worker and the slowdown under load, all measured in the same run.
 */
@Command(name = "step", mixinStandardHelpOptions = true,
        description = "Training steps of a preset model at 1 and N workers: step time, compute/comm/optimizer split, scaling.")
final class StepBench implements Callable<Integer> {
    @Option(names = "--preset", paramLabel = "P", defaultValue = "medium", description = "tiny or medium (default medium)")
    String preset;

    @Option(names = "--workers", paramLabel = "LIST", split = ",", defaultValue = "1,2", description = "worker counts (default 1,2)")
    List<Integer> workers;

    @Option(names = "--steps", paramLabel = "N", defaultValue = "8", description = "timed steps per configuration")
    int steps;

    @Option(names = "--warmup", paramLabel = "N", defaultValue = "2", description = "steps dropped first (JIT, allocator)")
    int warmup;

    @Option(names = "--batch", paramLabel = "B", defaultValue = "4", description = "global batch size")
    int batch;

    @Option(names = "--resolution", paramLabel = "PX", description = "image size (default: 64 tiny, 192 medium)")
    Integer resolution;

    @Option(names = "--optimizer", paramLabel = "O", defaultValue = "adamw", description = "adamw, adamw8bit, lion or lion8bit")
    String optimizer;

    @Option(names = "--rounds", paramLabel = "R", defaultValue = "1", description = "rounds over every configuration")
    int rounds;

    @Option(names = "--load", description = "also run every configuration with one core taken by a spinning thread")
    boolean load;

    @Option(names = "--overlap", description = "also run every multi-worker configuration without the communication thread"
            + " (--overlap off), to show what overlapping saves")
    boolean overlap;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    /** Medians over a run's timed steps, in seconds; {@code overlapped} false: --overlap off. */
    record Run(int workers, boolean loaded, boolean overlapped, double step, double compute, double comm, double optimizer) {}

    @Override
    public Integer call() throws Exception {
        Presets p = switch (preset.toLowerCase(Locale.ROOT)) {
            case "tiny" -> Presets.TINY;
            case "medium" -> Presets.MEDIUM;
            default -> throw ConfigError.invalid("--preset", Json.quote(preset), "tiny or medium");
        };
        if (steps < 1 || steps > 10_000) {
            throw ConfigError.invalid("--steps", Integer.toString(steps), "1..10000");
        }
        if (warmup < 0 || warmup > 1000) {
            throw ConfigError.invalid("--warmup", Integer.toString(warmup), "0..1000");
        }
        if (rounds < 1 || rounds > 100) {
            throw ConfigError.invalid("--rounds", Integer.toString(rounds), "1..100");
        }
        if (batch < 1 || batch > 4096) {
            throw ConfigError.invalid("--batch", Integer.toString(batch), "1..4096");
        }
        if (resolution != null && (resolution < 64 || resolution > 2048 || resolution % 64 != 0)) {
            throw ConfigError.invalid("--resolution", Integer.toString(resolution), "a multiple of 64 in 64..2048");
        }
        for (int w : workers) {
            if (w < 1 || w > 16 || batch % w != 0) {
                throw ConfigError.invalid("--workers", Integer.toString(w), "1..16 local workers that divide --batch " + batch);
            }
        }
        if (!List.of("adamw", "adamw8bit", "lion", "lion8bit").contains(optimizer)) {
            throw ConfigError.invalid("--optimizer", Json.quote(optimizer), "adamw, adamw8bit, lion or lion8bit");
        }
        int px = resolution != null ? resolution : p == Presets.TINY ? 64 : 192;
        Path dir = Files.createTempDirectory("dreamcluster-bench-step");
        try {
            Path trainJson = inputs(dir, p, px);
            List<Run> runs = new ArrayList<>();
            for (int r = 0; r < rounds; r++) {
                for (boolean loaded : load ? List.of(false, true) : List.of(false)) {
                    for (int w : workers) {
                        runs.add(run(dir, trainJson, w, loaded, true, runs.size()));
                        if (overlap && w > 1) {
                            runs.add(run(dir, trainJson, w, loaded, false, runs.size()));
                        }
                    }
                }
            }
            report(p, px, runs);
            return 0;
        } finally {
            try (Stream<Path> all = Files.walk(dir)) {
                all.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
            }
        }
    }

    private Path inputs(Path dir, Presets p, int px) throws IOException {
        DiffusersFolder.writeRandom(dir.resolve("model"), p, 0, DType.F32);
        SyntheticDataset.write(dir.resolve("data"), Math.max(32, batch * 4), px, 1);
        Files.writeString(dir.resolve("optimizer.json"), "{\"base\": {\"optimizer\": \"" + optimizer + "\", \"lr\": 1e-4, \"weight_decay\": 0.01}}");
        Files.writeString(dir.resolve("train.json"), "{\"data_root\": \"data\", \"resume_ckpt\": \"model\", \"optimizer_config\": \"optimizer.json\","
                + " \"resolution\": " + px + ", \"batch_size\": " + batch + ", \"grad_accum\": 1, \"seed\": 1, \"clip_grad_norm\": 1.0,"
                + " \"max_epochs\": 100000, \"save_full_precision\": true}");
        return dir.resolve("train.json");
    }

    /** One configuration in a fresh {@code train} process; the spinning thread (if any) runs in this JVM meanwhile. */
    private Run run(Path dir, Path trainJson, int w, boolean loaded, boolean overlapped, int index) throws Exception {
        Path out = dir.resolve("run-" + index);
        List<String> cmd = ChildJvm.command("-Dai.djl.offline=true");
        cmd.addAll(List.of(Main.class.getName(), "train", "--config", trainJson.toString(), "--out", out.toString(),
                "--max_steps", Integer.toString(warmup + steps)));
        if (w > 1) {
            cmd.addAll(List.of("--workers", Integer.toString(w)));
        }
        cmd.addAll(List.of("--overlap", overlapped ? "on" : "off")); // passed on to the embedded cluster's worker JVMs
        ProcessBuilder pb = ChildJvm.builder(cmd).redirectErrorStream(true).redirectOutput(dir.resolve("run-" + index + ".log").toFile());
        AtomicBoolean spin = new AtomicBoolean(loaded);
        Thread spinner = new Thread(() -> {
            long x = 0;
            while (spin.get()) {
                x += System.nanoTime() & 1; // a core's worth of work that never sleeps, as another tenant's job would
            }
            if (x == 42) {
                System.out.print(""); // keeps the loop from being removed
            }
        }, "bench-load");
        spinner.setDaemon(true);
        if (loaded) {
            spinner.start();
        }
        int status;
        try {
            Process proc = pb.start();
            if (!proc.waitFor(3600, TimeUnit.SECONDS)) {
                proc.destroyForcibly();
                throw new IllegalStateException("bench step: a train run took over an hour; log " + dir.resolve("run-" + index + ".log"));
            }
            status = proc.exitValue();
        } finally {
            spin.set(false);
        }
        if (status != 0) {
            throw new IllegalStateException("bench step: train exited " + status + ":\n" + Files.readString(dir.resolve("run-" + index + ".log")));
        }
        List<double[]> rows = new ArrayList<>();
        for (String line : Files.readAllLines(out.resolve("metrics.jsonl"))) {
            JsonNode m = Json.MAPPER.readTree(line);
            if (m.path("step").asInt() > warmup && m.hasNonNull("samples_per_s")) {
                rows.add(new double[] {batch / m.path("samples_per_s").asDouble(), m.path("compute_s").asDouble(),
                        m.path("comm_s").asDouble(), m.path("optimizer_s").asDouble()});
            }
        }
        if (rows.isEmpty()) {
            throw new IllegalStateException("bench step: no timed steps in " + out.resolve("metrics.jsonl"));
        }
        double[] med = new double[4];
        for (int k = 0; k < 4; k++) {
            final int c = k;
            med[k] = BenchCommand.CollectiveBench.median(rows.stream().mapToDouble(x -> x[c]).toArray());
        }
        return new Run(w, loaded, overlapped, med[0], med[1], med[2], med[3]);
    }

    private void report(Presets p, int px, List<Run> runs) {
        PrintWriter out = spec.commandLine().getOut();
        out.printf(Locale.ROOT, "step benchmark: %s preset, %d px, global batch %d, %s, %d timed steps after %d warm-up, %d round(s);"
                + " %d cores; ms are medians over steps, [min-max] over rounds%n", p.key(), px, batch, optimizer, steps, warmup, rounds,
                Runtime.getRuntime().availableProcessors());
        out.printf(Locale.ROOT, "%-8s %-10s %-8s %18s %12s %14s %14s %14s %11s %14s%n", "workers", "cores", "overlap", "step (ms)",
                "samples/s", "compute (ms)", "comm (ms)", "optimizer (ms)", "comm share", "vs 1 worker");
        for (boolean loaded : load ? List.of(false, true) : List.of(false)) {
            List<Run> ones = runs.stream().filter(r -> r.workers() == 1 && r.loaded() == loaded).toList();
            for (int w : workers) {
                for (boolean ov : w > 1 && overlap ? List.of(true, false) : List.of(true)) {
                    List<Run> mine = runs.stream().filter(r -> r.workers() == w && r.loaded() == loaded && r.overlapped() == ov).toList();
                    double[] step = mine.stream().mapToDouble(Run::step).toArray();
                    double[] vsOne = new double[mine.size()];
                    for (int i = 0; i < mine.size(); i++) {
                        vsOne[i] = ones.size() > i ? ones.get(i).step() / mine.get(i).step() : Double.NaN;
                    }
                    double comm = median(mine, Run::comm);
                    double s = median(mine, Run::step);
                    out.printf(Locale.ROOT, "%-8d %-10s %-8s %18s %12.2f %14.1f %14.1f %14.1f %10.0f%% %14s%n", w,
                            loaded ? "1 taken" : "all free", w == 1 ? "-" : ov ? "on" : "off",
                            BenchCommand.CollectiveBench.spread(java.util.Arrays.stream(step).map(x -> x * 1e3).toArray(), "%.0f"),
                            batch / s, median(mine, Run::compute) * 1e3, comm * 1e3, median(mine, Run::optimizer) * 1e3, 100 * comm / s,
                            ones.isEmpty() ? "" : BenchCommand.CollectiveBench.spread(vsOne, "%.2fx"));
                }
            }
        }
        if (load) {
            for (int w : workers) {
                double idle = median(runs.stream().filter(r -> r.workers() == w && !r.loaded() && r.overlapped()).toList(), Run::step);
                double busy = median(runs.stream().filter(r -> r.workers() == w && r.loaded() && r.overlapped()).toList(), Run::step);
                out.printf(Locale.ROOT, "%d worker(s) with one core taken: step %.2fx slower%n", w, busy / idle);
            }
        }
        if (overlap) {
            for (int w : workers) {
                if (w > 1) {
                    double on = median(runs.stream().filter(r -> r.workers() == w && !r.loaded() && r.overlapped()).toList(), Run::comm);
                    double off = median(runs.stream().filter(r -> r.workers() == w && !r.loaded() && !r.overlapped()).toList(), Run::comm);
                    out.printf(Locale.ROOT, "%d workers: exposed communication %.1f ms with the communication thread, %.1f ms without (%.2fx)%n",
                            w, on * 1e3, off * 1e3, off / on);
                }
            }
        }
        out.flush();
    }

    private static double median(List<Run> runs, java.util.function.ToDoubleFunction<Run> f) {
        return BenchCommand.CollectiveBench.median(runs.stream().mapToDouble(f).toArray());
    }
}
