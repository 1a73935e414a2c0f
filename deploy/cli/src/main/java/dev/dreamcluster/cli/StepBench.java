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

    @Option(names = "--mixed", description = "also run every multi-worker configuration with the last worker's core shared with a"
            + " spinning process (workers pinned to cores), once with an even cut of the batch and once with --capacity auto")
    boolean mixed;

    @Option(names = "--validation", description = "also time a validation (16 images) at every worker count: every rank validates its share")
    boolean validation;

    @Option(names = "--peer", description = "also train the same model folder on the same global batches with diffusers' UNet and VAE,"
            + " transformers' CLIP text encoder and torch's AdamW (Debian python3-torch; DDP over gloo at N workers) in every round,"
            + " and print DreamCluster / torch")
    boolean peer;

    @Option(names = "--peer_sources", paramLabel = "DIR", split = ",", description = "diffusers and transformers source trees (v0.27.2,"
            + " v4.38.2) for --peer, or folders holding them (default: $" + StepPeer.SOURCES_ENV + ")")
    List<Path> peerSources;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    /** {all parameters, trainable ones} of the bench's model. */
    private long[] counts;

    /**
     * Medians over a run's timed steps, in seconds; {@code overlapped} false: --overlap off; {@code
     * cut}: "" (even, unloaded), "even" or "auto" under a pinned load; {@code validation}: median seconds
     * of a validation (NaN when not timed).
     */
    record Run(int workers, boolean loaded, boolean overlapped, double step, double compute, double comm, double optimizer, String cut,
            double validation, Startup startup, List<String> rankTimes) {}

    /**
     * How a cluster run started and what its ranks held: seconds from the launch to the last worker
     * identified (formation: JVM starts, joins, model loads and the op check), from there to generation
     * 0 started (the plan handshake: every rank hashes its copies against the plan and accepts), and
     * the largest peak resident set of a process that trained, in bytes (NaN where not known).
     */
    record Startup(double formation, double handshake, double peakRss) {}

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
            if (w < 1 || w > 16 || batch < w) {
                throw ConfigError.invalid("--workers", Integer.toString(w), "1..16 local workers, at most --batch " + batch);
            }
        }
        if (!List.of("adamw", "adamw8bit", "lion", "lion8bit").contains(optimizer)) {
            throw ConfigError.invalid("--optimizer", Json.quote(optimizer), "adamw, adamw8bit, lion or lion8bit");
        }
        if (peer && !optimizer.equals("adamw")) {
            throw ConfigError.invalid("--optimizer", Json.quote(optimizer), "adamw with --peer (the peer runs torch's AdamW)");
        }
        StepPeer torch = peer ? StepPeer.probe(peerSources) : null; // what is missing, before anything runs
        int px = resolution != null ? resolution : p == Presets.TINY ? 64 : 192;
        Path dir = Files.createTempDirectory("dreamcluster-bench-step");
        try {
            Path trainJson = inputs(dir, p, px);
            counts = paramCounts(dir.resolve("model"));
            StepPeer.Inputs peerInputs = torch == null ? null : StepPeer.writeInputs(dir.resolve("peer"), trainJson, warmup + steps, LR,
                    WEIGHT_DECAY);
            List<Run> runs = new ArrayList<>();
            List<PeerRound> peerRuns = new ArrayList<>();
            for (int r = 0; r < rounds; r++) {
                for (boolean loaded : load ? List.of(false, true) : List.of(false)) {
                    for (int w : workers) {
                        runs.add(run(dir, trainJson, w, loaded, true, runs.size(), "", false));
                        if (overlap && w > 1) {
                            runs.add(run(dir, trainJson, w, loaded, false, runs.size(), "", false));
                        }
                    }
                }
                for (int w : workers) {
                    if (mixed && w > 1) {
                        runs.add(run(dir, trainJson, w, false, true, runs.size(), "even", false));
                        runs.add(run(dir, trainJson, w, false, true, runs.size(), "auto", false));
                    }
                    if (validation) {
                        runs.add(run(dir, trainJson, w, false, true, runs.size(), "", true));
                    }
                }
                if (torch != null) { // the same round, right after DreamCluster's runs: the ratios compare like load
                    int round = r;
                    List<Run> mine = runs.stream().filter(x -> !x.loaded() && x.overlapped() && x.cut().isEmpty()
                            && Double.isNaN(x.validation())).toList();
                    for (int w : workers) {
                        Run ours = mine.stream().filter(x -> x.workers() == w).reduce((a, b) -> b).orElseThrow();
                        peerRuns.add(new PeerRound(round, ours, torch.run(dir.resolve("model"), peerInputs, dir, w, peerThreads(w), steps,
                                warmup)));
                    }
                }
            }
            report(p, px, runs);
            if (torch != null) {
                reportPeer(torch, peerInputs, peerRuns);
            }
            return 0;
        } finally {
            try (Stream<Path> all = Files.walk(dir)) {
                all.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
            }
        }
    }

    /** One round's DreamCluster run at a worker count and the torch run after it. */
    record PeerRound(int round, Run ours, StepPeer.Run torch) {}

    static final double LR = 1e-4;
    static final double WEIGHT_DECAY = 0.01;

    /** Intra-op threads of each of {@code w} processes on this machine: what DreamCluster's local workers get (cores / workers). */
    static int peerThreads(int w) {
        return Math.max(1, Runtime.getRuntime().availableProcessors() / w);
    }

    private Path inputs(Path dir, Presets p, int px) throws IOException {
        DiffusersFolder.writeRandom(dir.resolve("model"), p, 0, DType.F32);
        SyntheticDataset.write(dir.resolve("data"), Math.max(32, batch * 4), px, 1);
        Files.writeString(dir.resolve("optimizer.json"), "{\"base\": {\"optimizer\": \"" + optimizer + "\", \"lr\": " + LR
                + ", \"weight_decay\": " + WEIGHT_DECAY + "}}");
        Files.writeString(dir.resolve("train.json"), "{\"data_root\": \"data\", \"resume_ckpt\": \"model\", \"optimizer_config\": \"optimizer.json\","
                + " \"resolution\": " + px + ", \"batch_size\": " + batch + ", \"grad_accum\": 1, \"seed\": 1, \"clip_grad_norm\": 1.0,"
                + " \"max_epochs\": 100000, \"save_full_precision\": true}");
        return dir.resolve("train.json");
    }

    /**
     * One configuration in a fresh {@code train} process; the spinning thread (if any) runs in this JVM
     * meanwhile. {@code cut} "even" or "auto": workers pinned to cores, a spinning process pinned to the
     * last worker's core, and that --capacity; {@code timeValidation}: validate after every step.
     */
    private Run run(Path dir, Path trainJson, int w, boolean loaded, boolean overlapped, int index, String cut, boolean timeValidation)
            throws Exception {
        Path out = dir.resolve("run-" + index);
        List<String> cmd = ChildJvm.command("-Dai.djl.offline=true");
        cmd.addAll(List.of(Main.class.getName(), "train", "--config", (timeValidation ? validationConfig(trainJson) : trainJson).toString(),
                "--out", out.toString(), "--max_steps", Integer.toString(warmup + steps)));
        if (w > 1) {
            cmd.addAll(List.of("--workers", Integer.toString(w)));
        }
        cmd.addAll(List.of("--overlap", overlapped ? "on" : "off")); // passed on to the embedded cluster's worker JVMs
        if (!cut.isEmpty()) {
            cmd.addAll(List.of("--pin_workers"));
            if (cut.equals("auto")) {
                cmd.addAll(List.of("--capacity", "auto"));
            }
        }
        ProcessBuilder pb = ChildJvm.builder(cmd).redirectErrorStream(true).redirectOutput(dir.resolve("run-" + index + ".log").toFile());
        Process tenant = cut.isEmpty() ? null : new ProcessBuilder("taskset", "-c", Integer.toString((w - 1)
                % Runtime.getRuntime().availableProcessors()), "sh", "-c", "while :; do :; done").start(); // another job on that core
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
        java.time.LocalTime launched = java.time.LocalTime.now();
        java.util.Map<Long, Long> peaks = new java.util.HashMap<>();
        long parent;
        try {
            Process proc = pb.start();
            parent = proc.pid();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(3600);
            while (!proc.waitFor(200, TimeUnit.MILLISECONDS)) { // the ranks' peak memory, polled as bench memory does
                if (System.nanoTime() > deadline) {
                    proc.destroyForcibly();
                    throw new IllegalStateException("bench step: a train run took over an hour; log " + dir.resolve("run-" + index + ".log"));
                }
                List<ProcessHandle> all = new ArrayList<>(proc.descendants().toList());
                all.add(proc.toHandle());
                for (ProcessHandle h : all) {
                    long v = MemoryBench.vmHwm(h.pid());
                    if (v > 0) {
                        peaks.merge(h.pid(), v, Math::max);
                    }
                }
            }
            status = proc.exitValue();
        } finally {
            spin.set(false);
            if (tenant != null) {
                tenant.destroyForcibly();
            }
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
        // one process trains in the train JVM; a cluster in its worker JVMs (the launcher holds the coordinator only)
        double peak = peaks.entrySet().stream().filter(e -> w == 1 || e.getKey() != parent).mapToLong(java.util.Map.Entry::getValue).max()
                .orElse(0);
        Startup startup = w > 1 ? startup(out.resolve("train.log"), launched, w, peak) : new Startup(Double.NaN, Double.NaN, peak);
        return new Run(w, loaded, overlapped, med[0], med[1], med[2], med[3], cut, timeValidation ? validationSeconds(out, w) : Double.NaN,
                startup, w > 1 ? rankTimes(out, w) : List.of());
    }

    /** Each worker's own account of its time (ComputeThread's last line per rank: its steps and its ring's profile). */
    static List<String> rankTimes(Path out, int w) throws IOException {
        List<String> lines = new ArrayList<>();
        for (int r = 0; r < w; r++) {
            Path log = out.resolve("worker-" + r + ".log");
            if (Files.exists(log)) {
                Files.readAllLines(log).stream().filter(l -> l.matches("^rank \\d+: \\d+ steps, medians per step: .*")).reduce((a, b) -> b)
                        .ifPresent(lines::add);
            }
        }
        return lines;
    }

    /**
     * Formation and handshake seconds from the coordinator's train.log (yyyy-MM-dd HH:mm:ss.SSS lines, RunLog's): the
     * {@code w}-th "worker ... at ... (N available" line, then "generation 0 started". A run that
     * crosses midnight is not timed (NaN).
     */
    static Startup startup(Path trainLog, java.time.LocalTime launched, int w, double peak) throws IOException {
        java.time.LocalTime identified = null;
        java.time.LocalTime started = null;
        java.util.regex.Pattern worker = java.util.regex.Pattern.compile("^(?:\\d{4}-\\d\\d-\\d\\d )?(\\d\\d:\\d\\d:\\d\\d\\.\\d{3}) .* worker \\S+ at \\S+ \\((\\d+) available");
        java.util.regex.Pattern gen0 = java.util.regex.Pattern.compile("^(?:\\d{4}-\\d\\d-\\d\\d )?(\\d\\d:\\d\\d:\\d\\d\\.\\d{3}) .* generation 0 started");
        for (String line : Files.readAllLines(trainLog)) {
            java.util.regex.Matcher m = worker.matcher(line);
            if (identified == null && m.find() && Integer.parseInt(m.group(2)) >= w) {
                identified = java.time.LocalTime.parse(m.group(1));
            }
            java.util.regex.Matcher g = gen0.matcher(line);
            if (started == null && g.find()) {
                started = java.time.LocalTime.parse(g.group(1));
            }
        }
        if (identified == null || started == null || identified.isBefore(launched) || started.isBefore(identified)) {
            return new Startup(Double.NaN, Double.NaN, peak);
        }
        return new Startup(java.time.Duration.between(launched, identified).toMillis() / 1e3,
                java.time.Duration.between(identified, started).toMillis() / 1e3, peak);
    }

    /** train.json with a validation after every step (16 images, the first of the dataset). */
    private static Path validationConfig(Path trainJson) throws IOException {
        Path v = trainJson.resolveSibling("train-validation.json");
        String j = Files.readString(trainJson);
        Files.writeString(v, j.substring(0, j.lastIndexOf('}')) + ", \"val_every_n_steps\": 1, \"val_count\": 16}");
        return v;
    }

    /** The median seconds of the run's validations after the warm-up, from rank 0's log. */
    private double validationSeconds(Path out, int w) throws IOException {
        Path log = w > 1 ? out.resolve("worker-0.log") : out.resolve("train.log");
        List<Double> secs = new ArrayList<>();
        java.util.regex.Pattern p = java.util.regex.Pattern.compile("validation at step (\\d+): val_loss \\S+ in ([0-9.]+) s");
        List<String> lines = new ArrayList<>(Files.readAllLines(log));
        for (int r = 1; r < w; r++) { // rank 0 may be any worker JVM: every log has the same lines, take every one found
            lines.addAll(Files.readAllLines(out.resolve("worker-" + r + ".log")));
        }
        for (String line : lines) {
            java.util.regex.Matcher m = p.matcher(line);
            if (m.find() && Integer.parseInt(m.group(1)) > warmup) {
                secs.add(Double.parseDouble(m.group(2)));
            }
        }
        return secs.isEmpty() ? Double.NaN : BenchCommand.CollectiveBench.median(secs.stream().mapToDouble(Double::doubleValue).toArray());
    }

    private void report(Presets p, int px, List<Run> runs) {
        PrintWriter out = spec.commandLine().getOut();
        out.printf(Locale.ROOT, "step benchmark: %s preset, %d px, global batch %d, %s, %d timed steps after %d warm-up, %d round(s);"
                + " %d cores; ms are medians over steps, [min-max] over rounds%n", p.key(), px, batch, optimizer, steps, warmup, rounds,
                Runtime.getRuntime().availableProcessors());
        out.printf(Locale.ROOT, "%-8s %-10s %-8s %18s %12s %14s %14s %14s %11s %14s%n", "workers", "cores", "overlap", "step (ms)",
                "samples/s", "compute (ms)", "comm (ms)", "optimizer (ms)", "comm share", "vs 1 worker");
        for (boolean loaded : load ? List.of(false, true) : List.of(false)) {
            List<Run> ones = runs.stream().filter(r -> r.workers() == 1 && r.loaded() == loaded && r.cut().isEmpty()
                    && Double.isNaN(r.validation())).toList();
            for (int w : workers) {
                for (boolean ov : w > 1 && overlap ? List.of(true, false) : List.of(true)) {
                    List<Run> mine = runs.stream().filter(r -> r.workers() == w && r.loaded() == loaded && r.overlapped() == ov
                            && r.cut().isEmpty() && Double.isNaN(r.validation())).toList();
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
        startupTable(out, runs);
        runs.stream().filter(r -> r.workers() > 1 && !r.loaded() && r.overlapped() && r.cut().isEmpty() && Double.isNaN(r.validation())
                && !r.rankTimes().isEmpty()).findFirst().ifPresent(r -> {
                    out.printf(Locale.ROOT, "where each rank's time went, %d workers, first round (medians over its steps, warm-up included; a"
                            + " rank that computed faster waits in read for its neighbour: that wait is load imbalance, not transfer):%n", r.workers());
                    r.rankTimes().forEach(out::println);
                });
        if (load) {
            for (int w : workers) {
                double idle = median(runs.stream().filter(r -> r.workers() == w && !r.loaded() && r.overlapped() && r.cut().isEmpty()
                        && Double.isNaN(r.validation())).toList(), Run::step);
                double busy = median(runs.stream().filter(r -> r.workers() == w && r.loaded() && r.overlapped()).toList(), Run::step);
                out.printf(Locale.ROOT, "%d worker(s) with one core taken: step %.2fx slower%n", w, busy / idle);
            }
        }
        if (mixed) {
            for (int w : workers) {
                if (w > 1) {
                    double even = median(runs.stream().filter(r -> r.workers() == w && r.cut().equals("even")).toList(), Run::step);
                    double auto = median(runs.stream().filter(r -> r.workers() == w && r.cut().equals("auto")).toList(), Run::step);
                    out.printf(Locale.ROOT, "%d workers, worker %d's core shared with another job: even cut %.0f ms/step, measured cut"
                            + " (--capacity auto) %.0f ms/step (%.2fx)%n", w, w - 1, even * 1e3, auto * 1e3, even / auto);
                }
            }
        }
        if (validation) {
            double one = Double.NaN;
            for (int w : workers) {
                double v = median(runs.stream().filter(r -> r.workers() == w && !Double.isNaN(r.validation())).toList(), Run::validation);
                one = w == 1 ? v : one;
                out.printf(Locale.ROOT, "%d worker(s): a validation of 16 images takes %.0f ms%s%n", w, v * 1e3,
                        Double.isNaN(one) || w == 1 ? "" : String.format(Locale.ROOT, " (%.2fx faster than 1 worker)", one / v));
            }
        }
        if (overlap) {
            for (int w : workers) {
                if (w > 1) {
                    double on = median(runs.stream().filter(r -> r.workers() == w && !r.loaded() && r.overlapped() && r.cut().isEmpty()
                            && Double.isNaN(r.validation())).toList(), Run::comm);
                    double off = median(runs.stream().filter(r -> r.workers() == w && !r.loaded() && !r.overlapped()).toList(), Run::comm);
                    out.printf(Locale.ROOT, "%d workers: exposed communication %.1f ms with the communication thread, %.1f ms without (%.2fx)%n",
                            w, on * 1e3, off * 1e3, off / on);
                }
            }
        }
        out.flush();
    }

    /**
     * Per world size: formation and plan-handshake seconds, and each rank's peak resident memory beside
     * what ZeRO-1 says a rank holds (state on the host: fp32 weights, the flat gradients, the model's
     * .grad tensors and this rank's 1/N of the optimizer state; the peak adds activations, the JVM and
     * libtorch). Medians over the rounds' unloaded runs.
     */
    private void startupTable(PrintWriter out, List<Run> runs) {
        out.printf(Locale.ROOT, "%-8s %14s %14s %20s %22s%n", "workers", "formation (s)", "handshake (s)", "peak RSS/rank (MB)",
                "ZeRO-1 state/rank (MB)");
        for (int w : workers) {
            List<Run> mine = runs.stream().filter(r -> r.workers() == w && !r.loaded() && r.overlapped() && r.cut().isEmpty()
                    && Double.isNaN(r.validation())).toList();
            MemoryBench.Arithmetic a = MemoryBench.Arithmetic.of(counts[0], counts[1], w, optimizer);
            out.printf(Locale.ROOT, "%-8d %14s %14s %20.0f %22.0f%n", w, w == 1 ? "-" : String.format(Locale.ROOT, "%.1f",
                    median(mine, r -> r.startup().formation())), w == 1 ? "-" : String.format(Locale.ROOT, "%.2f",
                    median(mine, r -> r.startup().handshake())), median(mine, r -> r.startup().peakRss()) / 1e6, a.total() / 1e6);
        }
        out.println("formation: launch to the last worker identified to the coordinator (JVM start, cluster join, model load, op check);"
                + " handshake: from there to generation 0 started (every rank checked the plan hash against its copies and accepted).");
    }

    /** {all parameters, trainable ones} of the model folder (UNet + text encoder + VAE; UNet + text encoder). */
    private static long[] paramCounts(Path model) {
        DiffusersFolder f = DiffusersFolder.read(model);
        long unet = dev.dreamcluster.model.ParamManifest.count(f.manifest(dev.dreamcluster.freeze.Component.UNET));
        long te = dev.dreamcluster.model.ParamManifest.count(f.manifest(dev.dreamcluster.freeze.Component.TEXT_ENCODER));
        long vae = dev.dreamcluster.model.ParamManifest.count(f.manifest(dev.dreamcluster.freeze.Component.VAE));
        return new long[] {unet + te + vae, unet + te};
    }

    /**
     * DreamCluster against the torch peer, per worker count: both step medians over the rounds (the
     * torch split too), and DreamCluster / torch as a speed (torch's step time over DreamCluster's in the
     * same round: above 1 DreamCluster is faster), median [min-max] over rounds.
     */
    private void reportPeer(StepPeer torch, StepPeer.Inputs inputs, List<PeerRound> rounds) {
        PrintWriter out = spec.commandLine().getOut();
        out.printf(Locale.ROOT, "against torch (%s; %s): diffusers' UNet2DConditionModel and AutoencoderKL, transformers' CLIPTextModel,"
                + " torch.optim.AdamW, the same model folder and global batches; N workers = N processes, DDP over gloo on loopback;"
                + " intra-op threads = %d cores / processes on both sides%n", torch.versions(), torch.python(),
                Runtime.getRuntime().availableProcessors());
        out.printf(Locale.ROOT, "%-8s %-8s %22s %22s %18s %20s %24s%n", "workers", "threads", "DreamCluster step (ms)", "torch step (ms)",
                "torch compute (ms)", "torch optimizer (ms)", "DreamCluster / torch");
        for (int w : workers) {
            List<PeerRound> mine = rounds.stream().filter(r -> r.ours().workers() == w).toList();
            double[] ours = mine.stream().mapToDouble(r -> r.ours().step() * 1e3).toArray();
            double[] theirs = mine.stream().mapToDouble(r -> r.torch().step() * 1e3).toArray();
            double[] ratio = mine.stream().mapToDouble(r -> r.torch().step() / r.ours().step()).toArray();
            out.printf(Locale.ROOT, "%-8d %-8d %22s %22s %18.1f %20.1f %24s%n", w, peerThreads(w),
                    BenchCommand.CollectiveBench.spread(ours, "%.0f"), BenchCommand.CollectiveBench.spread(theirs, "%.0f"),
                    BenchCommand.CollectiveBench.median(mine.stream().mapToDouble(r -> r.torch().compute() * 1e3).toArray()),
                    BenchCommand.CollectiveBench.median(mine.stream().mapToDouble(r -> r.torch().optimizer() * 1e3).toArray()),
                    BenchCommand.CollectiveBench.spread(ratio, "%.2fx"));
        }
        out.printf(Locale.ROOT, "DreamCluster / torch: samples/s against samples/s in the same round (above 1.00x DreamCluster is faster);"
                + " DreamCluster's step includes decoding and resizing its images (median %.1f ms per global batch here), torch is handed"
                + " the decoded pixels%n", BenchCommand.CollectiveBench.median(inputs.decodeSeconds()) * 1e3);
        out.flush();
    }

    private static double median(List<Run> runs, java.util.function.ToDoubleFunction<Run> f) {
        return BenchCommand.CollectiveBench.median(runs.stream().mapToDouble(f).toArray());
    }
}
