package dev.dreamcluster.worker.train;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import dev.dreamcluster.config.CliFlags;
import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.config.ConfigResolver;
import dev.dreamcluster.config.Json;
import dev.dreamcluster.config.ResolvedTrainingConfig;
import dev.dreamcluster.config.TrainConfig;
import dev.dreamcluster.device.CollectiveKind;
import dev.dreamcluster.device.ComputeDevice;
import dev.dreamcluster.device.Libtorch;
import dev.dreamcluster.device.LibtorchProbe;
import dev.dreamcluster.freeze.Component;
import dev.dreamcluster.io.AtomicFiles;
import dev.dreamcluster.io.StepMetrics;
import dev.dreamcluster.model.DiffusersFolder;
import dev.dreamcluster.model.ParamManifest;
import dev.dreamcluster.model.ParamSpec;
import dev.dreamcluster.model.Presets;
import dev.dreamcluster.safetensors.DType;
import dev.dreamcluster.worker.data.SyntheticDataset;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;

/**
 * The DJL half of {@code bin/gpu-check}. Each mode prints its results, one line each, and a last line
 * {@code PASS <mode>} or {@code FAIL <mode>: why}; it exits 0, 1 (a check failed) or 2 (bad arguments, or a
 * libtorch DJL cannot use: the one line says why).
 *
 * <pre>
 *   probe                   Java, the Vector API, the libtorch (LibtorchProbe) and its DJL JNI, DJL's engine and GPUs
 *   classes [PREFIX,..]     loads (without initialising) every class of the dreamcluster jars on the class path, except
 *                           those whose names start with a PREFIX: a jar missing from a pack fails here with the class
 *                           that needs it
 *   tiny DEV[,DEV] [STEPS]  the tiny model, fp32, AdamW lr 1e-3, STEPS (default 5) steps on each device from the same
 *                           seed; with two devices the weights after the last step are compared (bound below)
 *   amp DEV [STEPS]         fp16 amp through the trainer (val_loss must fall by 20% in STEPS, default 20, steps), then
 *                           bf16 through DJL itself (a linear model, loss must fall 10x) where the JNI has the bf16 patch
 *   sd15 BATCH[,BATCH] [RES] [STEPS]   SD1.5 (random weights) on gpu:0, fp16 amp: per batch one warm-up step and STEPS
 *                           (default 2) timed ones with compute / comm / optimizer seconds and the device's peak memory
 * </pre>
 *
 * The libtorch is PYTORCH_LIBRARY_PATH (environment, then system property: DJL's order), checked by {@link Libtorch}.
 */
public final class GpuSmoke {
    /**
     * The bound of {@code tiny}: the weight change after the last step on the second device, against the first's, has
     * cosine >= 0.99 and relative L2 distance <= 0.05, and the losses agree to 1e-3 relative. (AdamW moves every weight
     * by about lr a step whatever the gradient, so the weights themselves would agree even with wrong gradients; the
     * direction of the change does not. cuDNN may run convolutions in TF32, libtorch's default.)
     */
    static final double MIN_COSINE = 0.99;
    static final double MAX_REL_DISTANCE = 0.05;
    static final double MAX_LOSS_REL = 1e-3;

    private GpuSmoke() {}

    public static void main(String[] args) throws Exception {
        if (args.length == 0) {
            usage("(nothing)");
        }
        String mode = args[0];
        boolean ok;
        try {
            ok = switch (mode) {
                case "probe" -> probe();
                case "classes" -> classes(args.length > 1 ? List.of(args[1].split(",")) : List.of());
                case "tiny" -> tiny(devices(arg(args, 1, null, "tiny DEV[,DEV]")), count(arg(args, 2, "5", ""), "STEPS"));
                case "amp" -> amp(device(arg(args, 1, null, "amp DEV")), count(arg(args, 2, "20", ""), "STEPS"));
                case "sd15" -> sd15(counts(arg(args, 1, null, "sd15 BATCH[,BATCH]"), "BATCH"), count(arg(args, 2, "512", ""), "RES"),
                        count(arg(args, 3, "2", ""), "STEPS"));
                default -> {
                    usage(mode);
                    yield false;
                }
            };
        } catch (ConfigError e) {
            System.out.println("error: " + e.getMessage());
            System.exit(2);
            return;
        }
        System.out.println((ok ? "PASS " : "FAIL ") + mode);
        System.exit(ok ? 0 : 1);
    }

    private static void usage(String got) {
        System.out.println("error: mode: " + got + " is not allowed (probe, classes, tiny DEV[,DEV] [STEPS], amp DEV [STEPS], "
                + "sd15 BATCH[,BATCH] [RES] [STEPS])");
        System.exit(2);
    }

    private static String arg(String[] args, int i, String def, String what) {
        if (args.length > i) {
            return args[i];
        }
        if (def == null) {
            throw ConfigError.invalid(what, "(missing)", "a value");
        }
        return def;
    }

    private static int count(String s, String what) {
        try {
            int v = Integer.parseInt(s);
            if (v >= 1) {
                return v;
            }
        } catch (NumberFormatException e) {
            // below
        }
        throw ConfigError.invalid(what, s, "a whole number >= 1");
    }

    private static int[] counts(String s, String what) {
        return Arrays.stream(s.split(",", -1)).mapToInt(x -> count(x, what)).toArray();
    }

    private static ComputeDevice device(String s) {
        ComputeDevice d = ComputeDevice.parse(s, "DEV");
        if (d.auto()) {
            throw ConfigError.invalid("DEV", s, "cpu or gpu:N");
        }
        return d;
    }

    private static List<ComputeDevice> devices(String s) {
        List<ComputeDevice> l = new ArrayList<>();
        for (String p : s.split(",", -1)) {
            l.add(device(p));
        }
        if (l.size() > 2) {
            throw ConfigError.invalid("DEV[,DEV]", s, "one or two devices");
        }
        return l;
    }

    /** Points DJL at PYTORCH_LIBRARY_PATH (when set) after checking it; null when DJL uses its own CPU libtorch. */
    private static LibtorchProbe libtorch(boolean needCuda) {
        String lib = ComputeReplica.pytorchSettings().get("PYTORCH_LIBRARY_PATH");
        if (lib == null) {
            if (needCuda) {
                throw ConfigError.invalid("PYTORCH_LIBRARY_PATH", "(unset)", "a CUDA libtorch: " + Libtorch.INSTALL);
            }
            return null;
        }
        Libtorch.settings(Path.of(lib), "PYTORCH_LIBRARY_PATH", needCuda, System.getenv()).forEach(System::setProperty);
        return LibtorchProbe.of(Path.of(lib));
    }

    /** Whether the JNI DJL loads for {@code p} was built with DreamCluster's patch (bfloat16 support). */
    static boolean patchedJni(LibtorchProbe p) {
        if (p == null) {
            return false;
        }
        for (Path jni : List.of(p.jniInLib(), p.jniInCache(System.getenv()))) {
            if (Files.exists(jni) && "".equals(p.stampMismatch(jni))) {
                return true;
            }
        }
        return false;
    }

    static boolean probe() {
        System.out.println("java " + System.getProperty("java.version") + " (" + System.getProperty("java.vm.name") + ") at "
                + System.getProperty("java.home") + "; jdk.incubator.vector " + (ModuleLayer.boot().findModule("jdk.incubator.vector")
                        .isPresent() ? "present" : "ABSENT") + "; " + Runtime.getRuntime().availableProcessors() + " cores");
        LibtorchProbe p = libtorch(false);
        System.out.println(p == null ? "libtorch: DJL's own (PYTORCH_LIBRARY_PATH unset)" : p.describe());
        if (p != null) {
            System.out.println("DJL JNI: " + (patchedJni(p) ? "built by bin/gpu-check jni with DreamCluster's patch ("
                    + (Files.exists(p.jniInLib()) ? p.jniInLib() : p.jniInCache(System.getenv())) + ")" : "DJL's published one (jar)"));
        }
        Engine e = Engine.getEngine("PyTorch");
        System.out.println("DJL " + Engine.getDjlVersion() + " engine " + e.getEngineName() + " " + e.getVersion() + ", GPUs seen: "
                + e.getGpuCount() + ", settings " + ComputeReplica.pytorchSettings());
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            float[] r = m.create(new float[] {1, 2, 3}).mul(2).add(1).toFloatArray();
            System.out.println("op on cpu: [1,2,3]*2+1 = " + Arrays.toString(r));
            return Arrays.equals(r, new float[] {3, 5, 7});
        }
    }

    /** Loads every class of the dreamcluster jars on the class path without initialising it. */
    static boolean classes(List<String> skip) throws IOException {
        int loaded = 0;
        int skipped = 0;
        List<String> failed = new ArrayList<>();
        ClassLoader cl = GpuSmoke.class.getClassLoader();
        for (String entry : System.getProperty("java.class.path").split(java.io.File.pathSeparator)) {
            Path jar = Path.of(entry);
            if (!jar.getFileName().toString().startsWith("dreamcluster-") || !Files.isRegularFile(jar)) {
                continue;
            }
            try (JarFile jf = new JarFile(jar.toFile())) {
                for (JarEntry je : java.util.Collections.list(jf.entries())) {
                    String n = je.getName();
                    if (!n.endsWith(".class") || n.equals("module-info.class") || n.contains("META-INF")) {
                        continue;
                    }
                    String cn = n.substring(0, n.length() - 6).replace('/', '.');
                    if (skip.stream().anyMatch(p -> !p.isEmpty() && cn.startsWith(p))) {
                        skipped++;
                        continue;
                    }
                    try {
                        Class<?> c = Class.forName(cn, false, cl);
                        c.getDeclaredMethods(); // resolves every type in the signatures
                        c.getDeclaredFields();
                        loaded++;
                    } catch (LinkageError | ClassNotFoundException ex) {
                        failed.add(cn + ": " + ex);
                    }
                }
            }
        }
        System.out.println("classes loaded: " + loaded + ", failed: " + failed.size() + ", left out: " + skipped + " (" + skip + ")");
        failed.stream().limit(10).forEach(f -> System.out.println("  " + f));
        return loaded > 0 && failed.isEmpty();
    }

    private static ResolvedTrainingConfig adamw(String lr) {
        try {
            return ConfigResolver.resolve(null, CliFlags.NONE, new ConfigResolver.Input(Json.MAPPER.readTree(
                    "{\"base\": {\"optimizer\": \"adamw\", \"lr\": " + lr + "}}"), "gpu-smoke"), 4);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    private static TrainConfig tinyConfig(Path tmp, String out, int steps, int batch, int res) {
        return new TrainConfig(tmp.resolve("data"), tmp.resolve("model"), tmp.resolve(out), 1000, steps, batch, 1, 9, res, 1.0, 0.0, 0, 0,
                0, 0, 4, 0.02, 0, true, 100, false);
    }

    /** The tiny model's steps on each device; with two, the weight change after the last step is compared. */
    static boolean tiny(List<ComputeDevice> devs, int steps) throws IOException {
        libtorch(devs.stream().anyMatch(ComputeDevice::isGpu));
        Path tmp = Files.createTempDirectory("dreamcluster-gpu-smoke");
        try {
            DiffusersFolder.writeRandom(tmp.resolve("model"), Presets.TINY, 0, DType.F32);
            SyntheticDataset.write(tmp.resolve("data"), 8, 64, 1);
            ResolvedTrainingConfig opt = adamw("1e-3");
            List<Map<String, float[]>> before = new ArrayList<>();
            List<Map<String, float[]>> after = new ArrayList<>();
            List<double[]> losses = new ArrayList<>();
            for (ComputeDevice d : devs) {
                ComputeConfig c = new ComputeConfig(d, false, Precision.FP16, CollectiveKind.RING, true);
                long t0 = System.nanoTime();
                try (Trainer t = new Trainer(tinyConfig(tmp, "out-" + d, steps, 4, 64), opt, null, w -> { }, null, c)) {
                    before.add(weights(t));
                    double[] l = new double[steps];
                    StringBuilder line = new StringBuilder(String.format(Locale.ROOT, "tiny %-6s fp32 setup %.2f s", d,
                            (System.nanoTime() - t0) / 1e9));
                    for (int i = 0; i < steps; i++) {
                        long s = System.nanoTime();
                        StepMetrics r = t.trainStep();
                        l[i] = r.loss();
                        line.append(String.format(Locale.ROOT, " | %d: loss %.6f %.0f ms", r.step(), r.loss(), (System.nanoTime() - s) / 1e6));
                    }
                    losses.add(l);
                    after.add(weights(t));
                    System.out.println(line);
                }
            }
            if (devs.size() < 2) {
                return Arrays.stream(losses.get(0)).allMatch(Double::isFinite);
            }
            boolean ok = true;
            for (int i = 0; i < steps; i++) {
                double a = losses.get(0)[i];
                double b = losses.get(1)[i];
                ok &= Math.abs(a - b) <= MAX_LOSS_REL * Math.abs(a);
            }
            double dot = 0;
            double na = 0;
            double nb = 0;
            double diff = 0;
            double maxAbs = 0;
            long n = 0;
            for (String k : before.get(0).keySet()) {
                float[] w0 = before.get(0).get(k);
                float[] a = after.get(0).get(k);
                float[] b = after.get(1).get(k);
                for (int i = 0; i < w0.length; i++) {
                    double da = a[i] - w0[i];
                    double db = b[i] - before.get(1).get(k)[i];
                    dot += da * db;
                    na += da * da;
                    nb += db * db;
                    diff += (da - db) * (da - db);
                    maxAbs = Math.max(maxAbs, Math.abs(a[i] - b[i]));
                    n++;
                }
            }
            double cos = dot / Math.sqrt(na * nb);
            double rel = Math.sqrt(diff / na);
            boolean wOk = cos >= MIN_COSINE && rel <= MAX_REL_DISTANCE;
            System.out.printf(Locale.ROOT, "tiny %s vs %s after step %d: %d trainable weights, update cosine %.6f (bound >= %.2f), "
                    + "relative L2 distance %.3e (bound <= %.2f), max |w_a - w_b| %.3e; losses within %.0e relative: %s%n", devs.get(1),
                    devs.get(0), steps, n, cos, MIN_COSINE, rel, MAX_REL_DISTANCE, maxAbs, MAX_LOSS_REL, ok ? "yes" : "NO");
            return ok && wOk;
        } finally {
            AtomicFiles.deleteRecursively(tmp);
        }
    }

    /** Every trainable tensor of the UNet and the text encoder, by component/name. */
    private static Map<String, float[]> weights(Trainer t) {
        Map<String, float[]> m = new LinkedHashMap<>();
        DiffusersFolder.Weights w = t.weightValues();
        for (Component c : List.of(Component.UNET, Component.TEXT_ENCODER)) {
            List<String> names = t.trainableNames(c);
            for (ParamSpec p : t.model().manifest(c)) {
                if (names.contains(p.name())) {
                    m.put(c + "/" + p.name(), w.values(c, p));
                }
            }
        }
        return m;
    }

    /** fp16 amp through the trainer; bf16 through DJL where the JNI has DreamCluster's patch. */
    static boolean amp(ComputeDevice d, int steps) throws IOException {
        LibtorchProbe p = libtorch(d.isGpu());
        Path tmp = Files.createTempDirectory("dreamcluster-gpu-smoke");
        boolean ok;
        try {
            DiffusersFolder.writeRandom(tmp.resolve("model"), Presets.TINY, 0, DType.F32);
            SyntheticDataset.write(tmp.resolve("data"), 8, 64, 1);
            ComputeConfig c = new ComputeConfig(d, true, Precision.FP16, CollectiveKind.RING, true);
            try (Trainer t = new Trainer(tinyConfig(tmp, "out", steps, 2, 64), adamw("1e-3"), null, w -> { }, null, c)) {
                double v0 = t.validate();
                double last = Double.NaN;
                for (int i = 0; i < steps; i++) {
                    last = t.trainStep().loss();
                }
                double v1 = t.validate();
                ok = v1 < 0.8 * v0;
                System.out.printf(Locale.ROOT, "amp fp16 on %s (trainer, tiny): val_loss %.5f -> %.5f after %d steps (must fall by 20%%), "
                        + "last loss %.5f: %s%n", d, v0, v1, steps, last, ok ? "falls" : "DOES NOT FALL");
            }
        } finally {
            AtomicFiles.deleteRecursively(tmp);
        }
        if (!patchedJni(p)) {
            System.out.println("amp bf16 on " + d + ": not run: the JNI DJL loads here is DJL's published one, which aborts the JVM on "
                    + "any bfloat16 tensor (docs/known-defects.md); bin/gpu-check jni builds one with the patch");
            return ok;
        }
        return bf16(d) && ok;
    }

    /**
     * bfloat16 through the patched JNI: exact casts of representable values, then a linear model y = x W with W in bf16
     * trained by plain gradient descent towards a teacher; the loss must fall 10x in 40 steps.
     */
    static boolean bf16(ComputeDevice d) {
        Device dev = d.isGpu() ? Device.gpu(d.gpuIndex()) : Device.cpu();
        try (NDManager m = NDManager.newBaseManager(dev)) {
            float[] exact = {1.5f, -2.25f, 0.15625f, 384f};
            NDArray b = m.create(exact).toType(DataType.BFLOAT16, false);
            boolean castOk = b.getDataType() == DataType.BFLOAT16 && Arrays.equals(b.toType(DataType.FLOAT32, false).toFloatArray(), exact);
            m.getEngine().setRandomSeed(7);
            NDArray x = m.randomNormal(new Shape(256, 32)).toType(DataType.BFLOAT16, false);
            NDArray teacher = m.randomNormal(new Shape(32, 8)).toType(DataType.BFLOAT16, false);
            NDArray y = x.matMul(teacher);
            NDArray w = m.zeros(new Shape(32, 8), DataType.BFLOAT16);
            double first = Double.NaN;
            double last = Double.NaN;
            for (int i = 0; i < 40; i++) {
                w.setRequiresGradient(true);
                try (GradientCollector gc = m.getEngine().newGradientCollector()) {
                    NDArray loss = x.matMul(w).sub(y).square().mean();
                    gc.backward(loss);
                    last = loss.toType(DataType.FLOAT32, false).getFloat();
                }
                if (i == 0) {
                    first = last;
                }
                NDArray g = w.getGradient();
                NDArray next = w.sub(g.mul(0.2f));
                w = next;
            }
            boolean falls = last < first / 10 && w.getDataType() == DataType.BFLOAT16;
            System.out.printf(Locale.ROOT, "amp bf16 on %s (DJL, patched JNI): casts of %s %s; linear model in bf16: loss %.5f -> %.5f in 40 "
                    + "steps (must fall 10x): %s%n", d, Arrays.toString(exact), castOk ? "exact" : "WRONG", first, last,
                    falls ? "falls" : "DOES NOT FALL");
            return castOk && falls;
        }
    }

    /** SD1.5 at RES px on gpu:0, fp16 amp: per batch size one warm-up step and {@code steps} timed ones. */
    static boolean sd15(int[] batches, int res, int steps) throws IOException {
        if (res % 64 != 0) {
            throw ConfigError.invalid("RES", Integer.toString(res), "a multiple of 64");
        }
        libtorch(true);
        Path tmp = Files.createTempDirectory("dreamcluster-gpu-smoke");
        boolean ok = true;
        try {
            long t0 = System.nanoTime();
            DiffusersFolder.writeRandom(tmp.resolve("model"), Presets.SD15, 0, DType.F16);
            SyntheticDataset.write(tmp.resolve("data"), Arrays.stream(batches).max().orElse(1) * 2, res, 1);
            System.out.printf(Locale.ROOT, "sd15: UNet %d parameters (diffusers' count must match), random weights and %d px data "
                    + "written in %.1f s%n", ParamManifest.count(ParamManifest.unet(Presets.SD15.unet)), res, (System.nanoTime() - t0) / 1e9);
            ComputeConfig c = new ComputeConfig(ComputeDevice.gpu(0), true, Precision.FP16, CollectiveKind.RING, true);
            for (int b : batches) {
                t0 = System.nanoTime();
                try (Trainer t = new Trainer(tinyConfig(tmp, "out-" + b, 1 + steps, b, res), adamw("1e-6"), null, w -> { }, null, c);
                        PeakMemory peak = new PeakMemory(Device.gpu(0))) {
                    double setup = (System.nanoTime() - t0) / 1e9;
                    StepMetrics warm = t.trainStep();
                    double cs = 0;
                    double co = 0;
                    double op = 0;
                    double loss = Double.NaN;
                    for (int i = 0; i < steps; i++) {
                        StepMetrics r = t.trainStep();
                        cs += r.computeSeconds();
                        co += r.commSeconds();
                        op += r.optimizerSeconds();
                        loss = r.loss();
                    }
                    cs /= steps;
                    co /= steps;
                    op /= steps;
                    double total = cs + co + op;
                    ok &= Double.isFinite(loss);
                    System.out.printf(Locale.ROOT, "dreamcluster sd15 %dpx batch %d: step %.1f ms = compute %.1f + comm %.1f + optimizer %.1f "
                            + "ms (mean of %d after 1 warm-up of %.1f ms; setup %.1f s), %.2f samples/s, loss %.5f | device used peak %s%n",
                            res, b, total * 1e3, cs * 1e3, co * 1e3, op * 1e3, steps,
                            (warm.computeSeconds() + warm.commSeconds() + warm.optimizerSeconds()) * 1e3, setup, b / total, loss, peak.text());
                }
            }
        } finally {
            AtomicFiles.deleteRecursively(tmp);
        }
        return ok;
    }

    /** The device's used memory (cudaMemGetInfo through DJL's CudaUtils), polled every 5 ms on a daemon thread. */
    private static final class PeakMemory implements AutoCloseable {
        private final Thread thread;
        private volatile boolean stop;
        private volatile long peak = -1;
        private volatile String error;

        PeakMemory(Device d) {
            thread = new Thread(() -> {
                while (!stop) {
                    try {
                        peak = Math.max(peak, ai.djl.util.cuda.CudaUtils.getGpuMemory(d).getCommitted());
                        Thread.sleep(5);
                    } catch (InterruptedException e) {
                        return;
                    } catch (RuntimeException | LinkageError e) {
                        error = e.toString();
                        return;
                    }
                }
            }, "gpu-smoke-peak-memory");
            thread.setDaemon(true);
            thread.start();
        }

        String text() {
            return peak >= 0 ? String.format(Locale.ROOT, "%.2f GiB", peak / (double) (1L << 30)) : "not read (" + error + ")";
        }

        @Override
        public void close() {
            stop = true;
            try {
                thread.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
