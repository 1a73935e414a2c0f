package dev.dreamcluster.worker.train;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dreamcluster.config.Json;
import dev.dreamcluster.config.ResolvedConfigJson;
import dev.dreamcluster.config.ResolvedTrainingConfig;
import dev.dreamcluster.safetensors.DType;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * A whole single-process run: steps until max_steps, validation, metrics.jsonl, a progress line,
 * checkpoints (every N steps, N epochs, N minutes, and at the end) and the final model in
 * {@code <out>/final}.
 */
public final class TrainingRun {
    private final TrainConfig cfg;
    private final ResolvedTrainingConfig opt;
    private final Path resume;
    private final PrintStream progress;
    private final ComputeConfig compute;

    public TrainingRun(TrainConfig cfg, ResolvedTrainingConfig opt, Path resume, PrintStream progress) {
        this(cfg, opt, resume, progress, ComputeConfig.CPU_FP32);
    }

    /** @param compute device and precision (train.json device/amp) */
    public TrainingRun(TrainConfig cfg, ResolvedTrainingConfig opt, Path resume, PrintStream progress, ComputeConfig compute) {
        this.compute = compute;
        this.cfg = cfg;
        this.opt = opt;
        this.resume = resume;
        this.progress = progress;
    }

    /** Runs to the end; returns the last step's result. */
    public StepResult run() {
        try {
            Files.createDirectories(cfg.out());
            Files.writeString(cfg.out().resolve("resolved_optimizer_config.json"), ResolvedConfigJson.write(opt) + "\n");
            Files.writeString(cfg.out().resolve("train_config.json"), cfg.toJson().toPrettyString() + "\n");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write to " + cfg.out(), e);
        }
        try (Trainer t = new Trainer(cfg, opt, resume, w -> progress.println("warning: " + w), null, compute);
                Writer metrics = Files.newBufferedWriter(cfg.out().resolve("metrics.jsonl"), StandardCharsets.UTF_8,
                        StandardOpenOption.CREATE, StandardOpenOption.APPEND)) {
            StepResult last = null;
            long start = System.nanoTime();
            long lastCkpt = System.nanoTime();
            int startStep = t.step();
            if (startStep == 0) {
                writeMetric(metrics, new StepResult(0, Double.NaN, 0, 0, Double.NaN, Double.NaN, t.validate()));
            }
            while (t.step() < t.totalSteps()) {
                StepResult r = t.trainStep();
                boolean lastStep = t.step() == t.totalSteps();
                if (lastStep || (cfg.valEveryNSteps() > 0 && t.step() % cfg.valEveryNSteps() == 0)) {
                    r = new StepResult(r.step(), r.loss(), r.lrUnet(), r.lrTextEncoder(), r.gradNorm(), r.samplesPerS(), t.validate());
                }
                writeMetric(metrics, r);
                progress(r, t.totalSteps(), startStep, start);
                boolean epochDone = t.atEpochEnd() && cfg.saveEveryNEpochs() > 0 && (t.epoch() + 1) % cfg.saveEveryNEpochs() == 0;
                boolean byStep = cfg.saveEveryNSteps() > 0 && t.step() % cfg.saveEveryNSteps() == 0;
                boolean byTime = cfg.ckptEveryNMinutes() > 0 && System.nanoTime() - lastCkpt > cfg.ckptEveryNMinutes() * 60e9;
                if (lastStep || epochDone || byStep || byTime) {
                    t.checkpoint(cfg.out().resolve("checkpoints").resolve(String.format("step-%06d", t.step())));
                    lastCkpt = System.nanoTime();
                }
                last = r;
            }
            if (progress != null) {
                progress.println();
            }
            t.saveModel(cfg.out().resolve("final"), cfg.saveFullPrecision() ? DType.F32 : DType.F16);
            return last;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write metrics in " + cfg.out(), e);
        }
    }

    private static void writeMetric(Writer w, StepResult r) throws IOException {
        ObjectNode n = Json.MAPPER.createObjectNode();
        n.put("step", r.step());
        putFinite(n, "loss", r.loss());
        n.put("lr_unet", r.lrUnet());
        n.put("lr_text_encoder", r.lrTextEncoder());
        putFinite(n, "grad_norm", r.gradNorm());
        putFinite(n, "samples_per_s", r.samplesPerS());
        putFinite(n, "val_loss", r.valLoss());
        w.write(n + "\n");
        w.flush();
    }

    private static void putFinite(ObjectNode n, String k, double v) {
        if (Double.isFinite(v)) {
            n.put(k, v);
        }
    }

    /** steps, loss, lr, it/s, ETA on one line (a new line every log_step when not on a terminal). */
    private void progress(StepResult r, int total, int startStep, long start) {
        if (progress == null) {
            return;
        }
        double secs = (System.nanoTime() - start) / 1e9;
        double itPerS = (r.step() - startStep) / Math.max(secs, 1e-9);
        long eta = (long) ((total - r.step()) / Math.max(itPerS, 1e-9));
        int width = 24;
        int filled = (int) ((long) width * r.step() / total);
        String line = String.format("step %d/%d [%s%s] loss %.4f lr %.2e %.2f it/s ETA %02d:%02d:%02d%s", r.step(), total,
                "#".repeat(filled), ".".repeat(width - filled), r.loss(), r.lrUnet() > 0 ? r.lrUnet() : r.lrTextEncoder(),
                itPerS, eta / 3600, eta / 60 % 60, eta % 60, Double.isNaN(r.valLoss()) ? "" : String.format(" val %.4f", r.valLoss()));
        if (System.console() != null) {
            progress.print("\r" + line);
            progress.flush();
        } else if (r.step() % cfg.logStep() == 0 || r.step() == total || !Double.isNaN(r.valLoss())) {
            progress.println(line);
        }
    }
}
