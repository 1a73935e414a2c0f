package dev.dreamcluster.worker.sample;

import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.model.ldm.LdmCheckpoint;
import dev.dreamcluster.optim.OptimizerStateFile;
import dev.dreamcluster.sample.SamplePrompts;
import dev.dreamcluster.sample.SampleRequest;
import dev.dreamcluster.tensorboard.EventFileWriter;
import dev.dreamcluster.config.OutputsConfig;
import dev.dreamcluster.io.StepMetrics;
import dev.dreamcluster.config.TrainConfig;
import dev.dreamcluster.worker.train.Trainer;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Consumer;
import javax.imageio.ImageIO;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The per-step hook of every training loop for what a run leaves besides checkpoints: TensorBoard
 * scalars (loss, lr per component, grad norm, samples/s, val_loss) and sample images, on rank 0 only
 * (the other ranks get a no-op and simply wait at the next collective, so they wait exactly as long
 * as rank 0 samples). Samples are due every {@code sample_steps} optimizer steps (EveryDream2's
 * {@code (global_step + 1) % sample_steps == 0}, with steps counted from 1 here), and before the
 * first step with {@code generate_pretrain_samples}. The prompts file is re-read each time samples
 * are due, as EveryDream2 does; an edit that does not parse is reported and the previous prompts kept.
 *
 * Files: {@code <out>/samples/gsSSSSS-III-<prompt>.png} (one image per prompt, one panel per cfg,
 * left to right) with a {@code .txt} beside it holding the prompt, negative prompt and seed; each
 * written to a temporary name, fsynced and renamed.
 */
public final class RunOutputs implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(RunOutputs.class);

    private final boolean active;
    private final TrainConfig cfg;
    private final Consumer<String> warn;
    private final Path samplesDir;
    private final EventFileWriter events;
    private SamplePrompts prompts;

    private RunOutputs(boolean active, TrainConfig cfg, Consumer<String> warn, SamplePrompts prompts, EventFileWriter events) {
        this.active = active;
        this.cfg = cfg;
        this.warn = warn;
        this.samplesDir = cfg.out().resolve("samples");
        this.prompts = prompts;
        this.events = events;
    }

    /**
     * Checks the sample prompts against the model (bad input: a {@link ConfigError}), opens the
     * TensorBoard file, and draws the pre-training samples when asked for and the run starts at step 0.
     */
    public static RunOutputs open(TrainConfig cfg, int rank, Trainer trainer, Consumer<String> warn) {
        OutputsConfig o = cfg.outputs();
        if (rank != 0) {
            return new RunOutputs(false, cfg, warn, null, null);
        }
        SamplePrompts prompts = o.samplePrompts() == null ? null : checked(cfg, trainer, warn);
        EventFileWriter events = null;
        if (o.logdir() != null) {
            String run = o.projectName() + "-" + ZonedDateTime.now(ZoneOffset.UTC).format(DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss"));
            events = EventFileWriter.open(o.logdir().resolve(run));
            LOG.info("TensorBoard events in {}", events.file());
        }
        RunOutputs r = new RunOutputs(true, cfg, warn, prompts, events);
        if (prompts != null && prompts.pretrainSamples() && trainer.step() == 0) {
            r.sample(0, trainer.samplingModels(), "", trainer.captions());
        }
        return r;
    }

    private static SamplePrompts checked(TrainConfig cfg, Trainer trainer, Consumer<String> warn) {
        SamplePrompts p = SamplePrompts.read(cfg.outputs().samplePrompts(), cfg.resolution(), cfg.seed(), cfg.batchSize(), warn);
        int multiple = trainer.samplingModels().sizeMultiple();
        for (int i = 0; i < p.requests().size(); i++) {
            SampleRequest q = p.requests().get(i);
            if (q.width() % multiple != 0 || q.height() % multiple != 0) {
                throw ConfigError.invalid(cfg.outputs().samplePrompts() + " at sample " + i + " size",
                        "[" + q.width() + ", " + q.height() + "]", "multiples of " + multiple + " for this model");
            }
        }
        return p;
    }

    /** After each optimizer step: TensorBoard scalars, then samples when due. */
    public void afterStep(Trainer trainer, StepMetrics r) {
        if (!active) {
            return;
        }
        if (events != null) {
            scalar("loss/step", r.step(), r.loss());
            scalar("hyperparameter/lr unet", r.step(), r.lrUnet());
            scalar("hyperparameter/lr text encoder", r.step(), r.lrTextEncoder());
            scalar("optimizer/grad_norm", r.step(), r.gradNorm());
            scalar("performance/images per second", r.step(), r.samplesPerS());
            scalar("loss/val", r.step(), r.valLoss());
        }
        if (prompts != null) {
            int every = prompts.everyNSteps() != null ? prompts.everyNSteps() : cfg.outputs().sampleSteps();
            if (r.step() % every == 0) {
                reload(trainer);
                sample(r.step(), trainer.samplingModels(), "", trainer.captions());
            }
        }
        if (events != null) {
            events.flush();
        }
    }

    private void scalar(String tag, int step, double v) {
        if (Double.isFinite(v)) {
            events.scalar(tag, step, v);
        }
    }

    private void reload(Trainer trainer) {
        try {
            prompts = checked(cfg, trainer, warn);
        } catch (ConfigError | UncheckedIOException e) {
            warn.accept(e.getMessage() + "; keeping the previous sample prompts");
        }
    }

    /**
     * Draws every sample prompt from {@code models} at {@code step}: one call per set of weights
     * (the current ones; EMA weights would come with {@code suffix "_ema"}, as EveryDream2 names them).
     *
     * @return the PNG files written
     */
    public List<Path> sample(int step, SamplingModels models, String suffix, List<String> captions) {
        long t0 = System.nanoTime();
        List<Path> written = new ArrayList<>();
        try {
            Files.createDirectories(samplesDir);
            List<SampleRequest> requests = prompts.requests();
            for (int i = 0; i < requests.size(); i++) {
                SampleRequest q = requests.get(i);
                String prompt = q.randomCaption() && !captions.isEmpty()
                        ? captions.get((int) Math.floorMod(step * 7919L + i, (long) captions.size()))
                        : q.prompt();
                long seed = q.seed() == -1 ? new SplittableRandom().nextLong(1L << 30) : q.seed();
                BufferedImage sheet = new BufferedImage(q.width() * prompts.cfgs().size(), q.height(), BufferedImage.TYPE_INT_RGB);
                Graphics2D g = sheet.createGraphics();
                for (int c = 0; c < prompts.cfgs().size(); c++) {
                    BufferedImage img = Sampler.sample(models, prompt, q.negativePrompt(), seed, q.width(), q.height(),
                            prompts.cfgs().get(c), prompts.scheduler(), prompts.steps());
                    g.drawImage(img, c * q.width(), 0, null);
                }
                g.dispose();
                ByteArrayOutputStream png = new ByteArrayOutputStream();
                ImageIO.write(sheet, "png", png);
                String clean = cleanFilename(prompt);
                clean = clean.substring(0, Math.min(100, clean.length()));
                String base = String.format("gs%05d-%03d-%s%s", step, i, suffix, clean);
                Path file = samplesDir.resolve(base + ".png");
                dev.dreamcluster.io.AtomicFiles.write(file, png.toByteArray());
                String text = q.describe(seed, prompt) + " cfgs: " + prompts.cfgs() + "\n scheduler: "
                        + prompts.scheduler().name().toLowerCase(java.util.Locale.ROOT) + " " + prompts.steps() + " steps\n";
                dev.dreamcluster.io.AtomicFiles.write(samplesDir.resolve(base + ".txt"), text.getBytes(StandardCharsets.UTF_8));
                written.add(file);
                if (events != null) {
                    String tag = q.randomCaption() ? String.format("sample_%03d%s", i, suffix)
                            : String.format("sample_%03d_%s%s", i, suffix, clean);
                    events.image(tag, step, png.toByteArray(), sheet.getWidth(), sheet.getHeight());
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write samples to " + samplesDir, e);
        }
        LOG.info("step {}: {} sample image(s) in {} ({} s)", step, written.size(), samplesDir,
                String.format("%.1f", (System.nanoTime() - t0) / 1e9));
        return written;
    }

    /**
     * At the end of the run, after the diffusers final/ folder: with {@code save_single_file}, rank 0
     * also writes {@code <out>/final.safetensors} in the LDM layout (fp16 unless save_full_precision).
     */
    public void finish(Trainer trainer) {
        if (!active || !cfg.outputs().saveSingleFile()) {
            return;
        }
        Path file = cfg.out().resolve("final.safetensors");
        LdmCheckpoint.write(file, trainer.model(), trainer.weightValues(),
                cfg.saveFullPrecision() ? dev.dreamcluster.safetensors.DType.F32 : dev.dreamcluster.safetensors.DType.F16);
        LOG.info("single-file checkpoint (LDM layout) in {}", file);
    }

    /** EveryDream2's clean_filename: letters, digits and spaces only, trailing spaces removed. */
    static String cleanFilename(String s) {
        StringBuilder b = new StringBuilder();
        s.codePoints().filter(c -> Character.isLetter(c) || Character.isDigit(c) || c == ' ').forEach(b::appendCodePoint);
        return b.toString().stripTrailing();
    }

    @Override
    public void close() {
        if (events != null) {
            events.close();
        }
    }
}
