package dev.dreamcluster.worker.check;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.jni.JniUtils;
import dev.dreamcluster.tokenizer.ClipTokenizer;
import dev.dreamcluster.worker.model.ConvForm;
import dev.dreamcluster.worker.model.OpShape;
import dev.dreamcluster.worker.model.Ops;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.BiFunction;
import java.util.stream.Collectors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The check a node runs before its first training step: trace one forward pass of the text encoder
 * and the UNet per latent size the run's buckets produce, at the rank's real micro-batch, then
 * measure every traced op ({@link OpCheck}) and fix a convolution form per shape in the models'
 * {@link Ops}. Throws {@link OpCheck.OpCheckFailed} when an op has no exact form.
 */
public final class StartupCheck {
    private static final Logger LOG = LoggerFactory.getLogger(StartupCheck.class);

    private StartupCheck() {}

    /**
     * The trainer's check: forward passes at the rank's micro-batch for every latent size.
     *
     * @param batch the images per micro-batch on this rank
     * @param latentSizes [h, w] of every latent size training will see
     * @param forward (latents [B, 4, h, w] fp32, token ids [B, 77]) -> the UNet's prediction, through the text encoder
     */
    public static List<OpCheck.Row> run(Ops ops, NDManager manager, DataType dtype, int batch, Collection<List<Integer>> latentSizes,
            BiFunction<NDArray, NDArray, NDArray> forward) {
        return run(ops, manager, dtype, () -> {
            for (List<Integer> hw : latentSizes) {
                try (NDScope scope = new NDScope()) {
                    NDArray latents = manager.zeros(new Shape(batch, 4, hw.get(0), hw.get(1)), DataType.FLOAT32);
                    NDArray ids = manager.zeros(new Shape(batch, ClipTokenizer.MAX_LENGTH), DataType.INT64);
                    forward.apply(latents, ids);
                }
            }
        });
    }

    /**
     * Traces what {@code forwards} runs (without recording gradients), measures every op shape met and
     * fixes the convolution forms in {@code ops}.
     */
    public static List<OpCheck.Row> run(Ops ops, NDManager manager, DataType dtype, Runnable forwards) {
        long t0 = System.nanoTime();
        Set<OpShape> shapes = trace(ops, forwards);
        List<OpCheck.Row> rows = new OpCheck(manager, dtype, 0x0C4EC4L).checkAll(shapes, ops);
        Map<ConvForm, Long> forms = ops.convForms().values().stream().collect(Collectors.groupingBy(f -> f, Collectors.counting()));
        double worst = rows.stream().filter(OpCheck.Row::exact).mapToDouble(OpCheck.Row::error).max().orElse(0);
        long routed = rows.stream().filter(r -> !r.exact()).count();
        LOG.info("op check: {} op shapes exact against float64 (worst relative error {}), convolution forms {}, {} inexact forms avoided, "
                + "{} threads, {} ms", shapes.size(), String.format("%.2g", worst), forms, routed, JniUtils.getNumThreads(),
                (System.nanoTime() - t0) / 1_000_000);
        for (OpCheck.Row r : rows) {
            if (!r.exact()) {
                LOG.info("op check: {} {} is not exact here (relative error {}); using another form", r.shape().key(), r.form(),
                        String.format("%.3g", r.error()));
            }
        }
        return rows;
    }

    /** Every op shape {@code forwards} meets (no gradients recorded). */
    public static Set<OpShape> trace(Ops ops, Runnable forwards) {
        boolean grad = JniUtils.isGradMode();
        JniUtils.setGradMode(false);
        ops.startTrace();
        try {
            forwards.run();
        } finally {
            JniUtils.setGradMode(grad);
        }
        return ops.stopTrace();
    }
}
