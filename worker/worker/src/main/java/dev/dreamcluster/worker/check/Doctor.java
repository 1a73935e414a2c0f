package dev.dreamcluster.worker.check;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.pytorch.jni.JniUtils;
import dev.dreamcluster.freeze.Component;
import dev.dreamcluster.model.DiffusersFolder;
import dev.dreamcluster.worker.model.ClipTextModel;
import dev.dreamcluster.worker.model.ModelWeights;
import dev.dreamcluster.worker.model.OpShape;
import dev.dreamcluster.worker.model.Ops;
import dev.dreamcluster.worker.model.UNetModel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * {@code dreamcluster doctor}: the startup check of a run at a given model, resolution and batch,
 * at each of several libtorch thread counts, as rows for a table. Unlike the node's check it does not
 * stop at the first op without an exact form: it measures every form of every shape, so the table
 * shows where libtorch's own kernels are wrong on this machine.
 */
public final class Doctor {
    private Doctor() {}

    /** One line per measurement, and whether every op has an exact form at every thread count. */
    public record Report(String machine, List<OpCheck.Row> rows, boolean allExact) {}

    /**
     * @param model a diffusers folder's configs (weights are zeros: only shapes matter for the trace)
     * @param threads libtorch intra-op thread counts to measure at (restored afterwards)
     */
    public static Report run(DiffusersFolder model, int resolution, int batch, int[] threads) {
        int factor = 1 << (model.vae().blockOutChannels().size() - 1);
        int previous = JniUtils.getNumThreads();
        List<OpCheck.Row> rows = new ArrayList<>();
        boolean allExact = true;
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                ModelWeights te = ModelWeights.zeros(m, model, Component.TEXT_ENCODER, Device.cpu());
                ModelWeights unet = ModelWeights.zeros(m, model, Component.UNET, Device.cpu())) {
            Ops ops = new Ops();
            ClipTextModel clip = new ClipTextModel(model.textEncoder(), te, ops);
            UNetModel u = new UNetModel(model.unet(), unet, ops);
            int latent = resolution / factor;
            Set<OpShape> shapes = StartupCheck.trace(ops, () -> {
                try (ai.djl.ndarray.NDScope scope = new ai.djl.ndarray.NDScope()) {
                    var ids = m.zeros(new ai.djl.ndarray.types.Shape(batch, dev.dreamcluster.tokenizer.ClipTokenizer.MAX_LENGTH),
                            DataType.INT64);
                    u.forward(m.zeros(new ai.djl.ndarray.types.Shape(batch, 4, latent, latent)), new int[batch], clip.forward(ids, 1));
                }
            });
            for (int t : threads) {
                JniUtils.setNumThreads(t);
                OpCheck check = new OpCheck(m, DataType.FLOAT32, 0x0C4EC4L);
                int i = 0;
                for (OpShape s : shapes) {
                    long seed = 0x0C4EC4L * 1_000_003L + i++;
                    if (s instanceof OpShape.Conv) {
                        boolean any = false;
                        for (var f : dev.dreamcluster.worker.model.ConvForm.values()) {
                            OpCheck.Row r = check.measure(s, f, seed);
                            rows.add(r);
                            any |= r.exact();
                        }
                        allExact &= any;
                    } else {
                        OpCheck.Row r = check.measure(s, null, seed);
                        rows.add(r);
                        allExact &= r.exact();
                    }
                }
            }
        } finally {
            JniUtils.setNumThreads(previous);
        }
        return new Report(machine(), rows, allExact);
    }

    /** The JVM, libtorch and CPU this ran on. */
    public static String machine() {
        return "java " + System.getProperty("java.version") + " (" + System.getProperty("java.vm.name") + "), "
                + OpCheck.library() + " (DJL " + Engine.getDjlVersion() + "), cpu " + cpuModel() + ", "
                + Runtime.getRuntime().availableProcessors() + " cores";
    }

    private static String cpuModel() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                if (line.startsWith("model name")) {
                    return line.substring(line.indexOf(':') + 1).trim();
                }
            }
        } catch (java.io.IOException | RuntimeException e) {
            // not Linux: the architecture is all we can say
        }
        return System.getProperty("os.arch");
    }
}
