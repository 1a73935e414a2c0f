package dev.dreamcluster.worker.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import dev.dreamcluster.freeze.Component;
import dev.dreamcluster.model.DiffusersFolder;
import dev.dreamcluster.model.Presets;
import dev.dreamcluster.safetensors.DType;
import dev.dreamcluster.worker.check.StartupCheck;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What a training step of the {@code medium} preset (SD1.5's block structure at a fifth of its width,
 * 8 heads) holds at its peak, with and without gradient checkpointing and chunked attention: one child
 * JVM per configuration runs one training step (text encoder and UNet, MSE loss, backward) at 256 px
 * (32x32 latents: 1024-query self-attention, 8 x 1024 x 1024 scores per layer at batch 1) and reads the
 * process's peak resident set (VmHWM, /proc/self/status) after resetting it just before the step
 * (/proc/self/clear_refs). libtorch's CPU allocator hands tensors to malloc, and with malloc's mmap
 * threshold at 128 KiB every tensor past that size is mapped and unmapped with its life, so the peak
 * above the resident set before the step is the tensors alive at the step's worst moment: activations
 * and their transients, plus the parameter gradients the step allocates (printed apart). User CPU
 * seconds per step are printed for the recomputation's cost. Nothing is asserted beyond the
 * direction of the effect: docs/gpu.md ("Memory") quotes the numbers.
 */
class ActivationMemoryTest {
    static final int BATCH = 1;
    static final int PIXELS = 256;
    /** Chunks of 128 queries at batch 1 (8 x 128 x 1024 = 2^20 scores, 4 MiB in fp32): 8 chunks per 1024-query layer. */
    static final long CHUNK = 1L << 20;

    @TempDir
    static Path tmp;

    record Config(String name, boolean checkpointing, long chunk, boolean recomputeChunks) {
        String[] args() {
            return new String[] {name, Boolean.toString(checkpointing), Long.toString(chunk), Boolean.toString(recomputeChunks)};
        }
    }

    /**
     * The plain step, checkpointing alone and everything on (the suite's budget: the two other mixes,
     * chunked attention alone and checkpointing + chunked attention, were measured once for docs/gpu.md
     * and are a line each here to measure again).
     */
    static final List<Config> CONFIGS = List.of(
            new Config("plain", false, 0, false),
            new Config("checkpointing", true, 0, false),
            new Config("checkpointing + chunks recomputed one at a time", true, CHUNK, true));

    record Measured(double baselineMiB, double peakMiB, double cpuSeconds, double loss, double gradientMiB) {
        double stepMiB() {
            return peakMiB - baselineMiB;
        }
    }

    @Test
    void shouldPrintPeakMemoryPerConfiguration() throws Exception {
        Assumptions.assumeTrue(Files.isWritable(Path.of("/proc/self/clear_refs")), "needs Linux's /proc/self/clear_refs to reset VmHWM");
        Path dir = tmp.resolve("medium");
        DiffusersFolder.writeRandom(dir, Presets.MEDIUM, 1, DType.F32);
        Map<Config, Measured> m = new LinkedHashMap<>();
        for (Config c : CONFIGS) {
            m.put(c, child(dir, c));
        }
        System.out.printf("activation memory, medium preset, %d px, batch %d, float32 on the CPU: peak RSS of one training step above"
                + " the RSS before it (the step allocates the %.1f MiB of parameter gradients too), one child JVM per configuration:%n",
                PIXELS, BATCH, m.values().iterator().next().gradientMiB());
        for (Map.Entry<Config, Measured> e : m.entrySet()) {
            Measured r = e.getValue();
            System.out.printf("  %-48s %7.1f MiB (activations %7.1f MiB) over %6.1f MiB, %5.1f CPU s (user), loss %.6f%n", e.getKey().name(),
                    r.stepMiB(), r.stepMiB() - r.gradientMiB(), r.baselineMiB(), r.cpuSeconds(), r.loss());
        }
        Measured plain = m.get(CONFIGS.get(0));
        for (Measured r : m.values()) {
            assertEquals(plain.loss(), r.loss(), 1e-5 * Math.abs(plain.loss()), "every configuration computes the same loss");
        }
        assertTrue(m.get(CONFIGS.get(CONFIGS.size() - 1)).stepMiB() < plain.stepMiB(),
                "checkpointing with chunked attention holds less than plain");
    }

    /** Runs {@link #main} for {@code c} in a child JVM and parses its MEMORY line. */
    static Measured child(Path dir, Config c) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xms256m", "-Xmx256m", "-Dai.djl.offline=true", "-cp", System.getProperty("java.class.path"),
                ActivationMemoryTest.class.getName(), dir.toString()));
        cmd.addAll(List.of(c.args()));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        pb.environment().put("OMP_WAIT_POLICY", "PASSIVE");
        // every allocation over 128 KiB is its own mapping, returned to the kernel when freed: the
        // resident set then follows the tensors alive instead of malloc's retained arenas
        pb.environment().put("MALLOC_MMAP_THRESHOLD_", "131072");
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(10, TimeUnit.MINUTES), c.name() + ": child did not finish");
        assertEquals(0, p.exitValue(), c.name() + ": child failed:\n" + out);
        for (String line : out.split("\n")) {
            if (line.startsWith("MEMORY ")) {
                String[] f = line.substring(7).trim().split(" ");
                return new Measured(Double.parseDouble(f[0]), Double.parseDouble(f[1]), Double.parseDouble(f[2]), Double.parseDouble(f[3]),
                        Double.parseDouble(f[4]));
            }
        }
        throw new AssertionError(c.name() + ": no MEMORY line in\n" + out);
    }

    /** VmRSS or VmHWM of this process in MiB. */
    static double status(String key) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith(key + ":")) {
                    return Long.parseLong(line.substring(key.length() + 1).trim().split("\\s+")[0]) / 1024.0;
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        throw new IllegalStateException("no " + key + " in /proc/self/status");
    }

    /**
     * User CPU seconds this process has used (/proc/self/stat): the compute, apart from the machine's
     * other load and from the system time the per-tensor mappings add.
     */
    static double cpuSeconds() {
        try {
            String stat = Files.readString(Path.of("/proc/self/stat"));
            String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
            return Long.parseLong(f[11]) / 100.0; // utime in clock ticks (USER_HZ 100)
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * Child: {@code dir name checkpointing chunk recomputeChunks [pixels batch]}; prints {@code MEMORY
     * baselineMiB peakMiB cpuSeconds loss gradientMiB}.
     */
    public static void main(String[] args) throws IOException {
        DiffusersFolder folder = DiffusersFolder.read(Path.of(args[0]));
        Ops ops = new Ops(new Ops.Memory(Boolean.parseBoolean(args[2]), Long.parseLong(args[3]), Boolean.parseBoolean(args[4])));
        int pixels = args.length > 5 ? Integer.parseInt(args[5]) : PIXELS;
        int batch = args.length > 6 ? Integer.parseInt(args[6]) : BATCH;
        int latent = pixels / 8;
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                ModelWeights te = ModelWeights.load(m, folder, Component.TEXT_ENCODER, Device.cpu(), n -> true);
                ModelWeights uw = ModelWeights.load(m, folder, Component.UNET, Device.cpu(), n -> true)) {
            ClipTextModel clip = new ClipTextModel(folder.textEncoder(), te, ops);
            UNetModel unet = new UNetModel(folder.unet(), uw, ops);
            SplittableRandom r = new SplittableRandom(11);
            long[] idv = new long[batch * 77];
            for (int i = 0; i < idv.length; i++) {
                idv[i] = r.nextInt(4000);
            }
            NDArray ids = Tensors.of(m, idv, new Shape(batch, 77));
            Shape shape = new Shape(batch, 4, latent, latent);
            NDArray sample = GradientCheckpointingTest.gauss(m, r, shape, 1);
            NDArray target = GradientCheckpointingTest.gauss(m, r, shape, 1);
            int[] t = new int[batch];
            for (int i = 0; i < batch; i++) {
                t[i] = 100 + 700 * i;
            }
            // every convolution in the form the startup check tries first (exactness is not the point here)
            for (OpShape s : StartupCheck.trace(ops, () -> unet.forward(sample, t, clip.forward(ids, 1)))) {
                if (s instanceof OpShape.Conv conv) {
                    ops.choose(conv, ConvForm.PADDED_OUTPUT);
                }
            }
            long params = 0;
            for (ModelWeights w : List.of(te, uw)) {
                for (NDArray a : w.tensors().values()) {
                    params += a.size();
                }
            }
            Files.writeString(Path.of("/proc/self/clear_refs"), "5"); // resets VmHWM to the current RSS
            double baseline = status("VmRSS");
            double cpu0 = cpuSeconds();
            float loss;
            try (NDScope scope = new NDScope();
                    GradientCollector gc = Engine.getInstance().newGradientCollector();
                    Recompute rc = ops.recompute()) {
                NDArray pred = unet.forward(sample, t, clip.forward(ids, 1, rc), rc);
                NDArray l = pred.sub(target).square().mean();
                rc.backward(gc, l);
                loss = l.getFloat();
            }
            double seconds = cpuSeconds() - cpu0;
            double peak = status("VmHWM");
            double grads = params * 4.0 / (1 << 20);
            System.out.printf("MEMORY %.1f %.1f %.3f %.8f %.1f%n", baseline, peak, seconds, loss, grads);
        }
    }
}
