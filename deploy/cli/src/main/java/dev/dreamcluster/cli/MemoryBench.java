package dev.dreamcluster.cli;

import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.config.Json;
import dev.dreamcluster.freeze.Component;
import dev.dreamcluster.model.DiffusersFolder;
import dev.dreamcluster.model.ParamManifest;
import dev.dreamcluster.model.Presets;
import dev.dreamcluster.safetensors.DType;
import dev.dreamcluster.worker.data.SyntheticDataset;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.stream.Stream;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code dreamcluster bench memory}: a few real training steps of a preset (random weights, a
 * generated dataset) per worker count, with the training state on the device (here DJL's CPU engine:
 * the code a GPU runs), and each rank's peak resident memory (the kernel's VmHWM of the process that
 * trains, polled while it runs) beside the ZeRO-1 arithmetic of what a rank holds. On a CPU the
 * "device" is host memory, so the peak counts everything a GPU rank would hold on the card plus the
 * JVM and the host-side fp32 copy of the model it loaded from.
 */
@Command(name = "memory", mixinStandardHelpOptions = true,
        description = "Peak memory per rank of training steps with the state on the device, beside the ZeRO-1 arithmetic.")
final class MemoryBench implements Callable<Integer> {
    @Option(names = "--preset", paramLabel = "P", defaultValue = "medium", description = "tiny, medium or sd15 (default medium)")
    String preset;

    @Option(names = "--workers", paramLabel = "LIST", split = ",", defaultValue = "1,2,3", description = "worker counts (default 1,2,3)")
    List<Integer> workers;

    @Option(names = "--resolution", paramLabel = "PX", defaultValue = "64", description = "image size (default 64)")
    int resolution;

    @Option(names = "--batch", paramLabel = "B", defaultValue = "1", description = "global batch size (default 1; at least the worker count)")
    int batch;

    @Option(names = "--steps", paramLabel = "N", defaultValue = "2", description = "training steps per configuration (default 2)")
    int steps;

    @Option(names = "--optimizer", paramLabel = "O", defaultValue = "adamw8bit", description = "adamw, adamw8bit, lion or lion8bit")
    String optimizer;

    @Option(names = "--checkpointing", description = "also run every worker count with train.json's gradient_checkpointing on")
    boolean checkpointing;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        Presets p = InitModelCommand.preset(preset);
        if (resolution < 64 || resolution % 64 != 0 || resolution > 2048) {
            throw ConfigError.invalid("--resolution", Integer.toString(resolution), "a multiple of 64 in 64..2048");
        }
        if (steps < 1 || steps > 100) {
            throw ConfigError.invalid("--steps", Integer.toString(steps), "1..100");
        }
        for (int w : workers) {
            if (w < 1 || w > 16 || w > Math.max(batch, 1)) {
                throw ConfigError.invalid("--workers", Integer.toString(w), "1..16 and at most --batch " + batch);
            }
        }
        if (!List.of("adamw", "adamw8bit", "lion", "lion8bit").contains(optimizer)) {
            throw ConfigError.invalid("--optimizer", Json.quote(optimizer), "adamw, adamw8bit, lion or lion8bit");
        }
        Path dir = Files.createTempDirectory("dreamcluster-bench-memory");
        PrintWriter out = spec.commandLine().getOut();
        try {
            DiffusersFolder.writeRandom(dir.resolve("model"), p, 0, DType.F32);
            SyntheticDataset.write(dir.resolve("data"), Math.max(8, batch * 2), resolution, 1);
            Files.writeString(dir.resolve("optimizer.json"), "{\"base\": {\"optimizer\": \"" + optimizer + "\", \"lr\": 1e-5}}");
            for (boolean gc : new boolean[] {false, true}) {
                Files.writeString(dir.resolve(gc ? "train-gc.json" : "train.json"), "{\"data_root\": \"data\", \"resume_ckpt\": \"model\","
                        + " \"optimizer_config\": \"optimizer.json\", \"resolution\": " + resolution + ", \"batch_size\": " + batch
                        + ", \"grad_accum\": 1, \"seed\": 1, \"max_epochs\": 1000, \"val_every_n_steps\": 0, \"val_count\": 0,"
                        + " \"save_full_precision\": true, \"gradient_checkpointing\": " + gc + "}");
            }
            DiffusersFolder f = DiffusersFolder.read(dir.resolve("model"));
            long unet = ParamManifest.count(f.manifest(Component.UNET));
            long te = ParamManifest.count(f.manifest(Component.TEXT_ENCODER));
            long vae = ParamManifest.count(f.manifest(Component.VAE));
            out.printf(Locale.ROOT, "memory benchmark: %s preset (unet %,d, text encoder %,d, vae %,d parameters), %d px, batch %d, %s,"
                    + " state on the device (DJL's CPU engine), %d steps%n", p.key(), unet, te, vae, resolution, batch, optimizer, steps);
            out.printf(Locale.ROOT, "%-8s %14s %14s %14s %14s %14s %16s %12s %12s%n", "workers", "weights MB", "flat grads MB", ".grad MB",
                    "optim MB", "sum MB", "peak RSS/rank MB", "commit GB", "commit s");
            for (int w : workers) {
                Arithmetic a = Arithmetic.of(unet + te + vae, unet + te, w, optimizer);
                for (boolean gc : checkpointing ? new boolean[] {false, true} : new boolean[] {false}) {
                    double peak = run(dir, w, gc);
                    double[] commit = commit(dir.resolve("run-" + w + (gc ? "-gc" : "")));
                    out.printf(Locale.ROOT, "%-8s %14.0f %14.0f %14.0f %14.0f %14.0f %16.0f %12.2f %12.1f%n", w + (gc ? " gc" : ""),
                            a.weights() / 1e6, a.flatGrads() / 1e6, a.tensorGrads() / 1e6, a.optimizer() / 1e6, a.total() / 1e6, peak / 1e6,
                            commit[0] / 1e9, commit[1]);
                    out.flush();
                }
            }
            out.println("weights: every fp32 parameter (the trainable ones are views of the flat buffer, no second copy); flat grads:"
                    + " the fp32 gradient buffer of the trainable ones; .grad: libtorch's per-tensor gradients (DJL cannot alias them to"
                    + " the flat buffer); optim: this rank's shard of the optimizer state (8-bit: 2 bytes per parameter plus one fp32"
                    + " absmax per 256; fp32 Adam: 8 bytes). The peak adds activations, the JVM and the host copy the model was loaded"
                    + " from; \"gc\" rows ran with gradient_checkpointing (the blocks recomputed in backward). commit: the last"
                    + " checkpoint's size and the seconds its commit took (rank 0 gathers the optimizer state and writes it all, temp"
                    + " name, fsync, rename), against a spot-safe stop's --preemption_grace (default 25 s).");
            out.flush();
            return 0;
        } finally {
            try (Stream<Path> all = Files.walk(dir)) {
                all.sorted(Comparator.reverseOrder()).forEach(x -> x.toFile().delete());
            }
        }
    }

    /** Bytes a rank holds by the ZeRO-1 arithmetic (state on the device). */
    record Arithmetic(double weights, double flatGrads, double tensorGrads, double optimizer) {
        static Arithmetic of(long all, long trainable, int world, String optimizer) {
            double shard = (double) trainable / world;
            double perParam = optimizer.equals("adamw8bit") ? 2 + 8.0 / 256 : optimizer.equals("lion8bit") ? 1 + 4.0 / 256
                    : optimizer.equals("adamw") ? 8 : 4;
            return new Arithmetic(4.0 * all, 4.0 * trainable, 4.0 * trainable, perParam * shard);
        }

        double total() {
            return weights + flatGrads + tensorGrads + optimizer;
        }
    }

    /** One configuration; the largest peak resident set of any process that trained (rank), in bytes. */
    private double run(Path dir, int w, boolean gc) throws Exception {
        String name = "run-" + w + (gc ? "-gc" : "");
        Path outDir = dir.resolve(name);
        List<String> cmd = ChildJvm.command("-Dai.djl.offline=true");
        cmd.addAll(List.of(Main.class.getName(), "train", "--config", dir.resolve(gc ? "train-gc.json" : "train.json").toString(), "--out", outDir.toString(),
                "--max_steps", Integer.toString(steps), "--state_on", "device"));
        if (w > 1) {
            cmd.addAll(List.of("--workers", Integer.toString(w)));
        }
        Process proc = ChildJvm.builder(cmd).redirectErrorStream(true).redirectOutput(dir.resolve(name + ".log").toFile()).start();
        Map<Long, Long> peaks = new HashMap<>();
        while (proc.isAlive()) {
            List<ProcessHandle> all = new ArrayList<>(proc.descendants().toList());
            all.add(proc.toHandle());
            for (ProcessHandle h : all) {
                long v = vmHwm(h.pid());
                if (v > 0) {
                    peaks.merge(h.pid(), v, Math::max);
                }
            }
            Thread.sleep(200);
        }
        if (proc.exitValue() != 0) {
            throw new IllegalStateException("bench memory: train exited " + proc.exitValue() + ":\n"
                    + Files.readString(dir.resolve(name + ".log")));
        }
        // one process: the train JVM trains; a cluster: the worker JVMs do (the launcher holds the coordinator only)
        return peaks.entrySet().stream().filter(e -> w == 1 || e.getKey() != proc.pid()).mapToLong(Map.Entry::getValue).max().orElse(0);
    }

    /** {bytes, seconds} of the last "checkpoint ... committed in S s (B bytes)" line of a run's logs (train.log, worker-0.log); NaN when none. */
    static double[] commit(Path runOut) throws IOException {
        double[] r = {Double.NaN, Double.NaN};
        var m = java.util.regex.Pattern.compile("committed in ([0-9.]+) s \\((-?[0-9]+) bytes\\)");
        List<String> lines = new ArrayList<>();
        for (String name : new String[] {"train.log", "worker-0.log"}) {
            if (Files.exists(runOut.resolve(name))) {
                lines.addAll(Files.readAllLines(runOut.resolve(name)));
            }
        }
        for (String line : lines) {
            var x = m.matcher(line);
            if (x.find()) {
                r[0] = Double.parseDouble(x.group(2));
                r[1] = Double.parseDouble(x.group(1));
            }
        }
        return r;
    }

    /** The process's peak resident set in bytes (Linux /proc), or 0 when it is gone or unreadable. */
    static long vmHwm(long pid) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc", Long.toString(pid), "status"))) {
                if (line.startsWith("VmHWM:")) {
                    return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
                }
            }
        } catch (IOException | RuntimeException e) {
            // the process ended between listing and reading
        }
        return 0;
    }
}
