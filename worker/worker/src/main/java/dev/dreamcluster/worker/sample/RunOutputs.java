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
 * scalars (loss, lr per component, grad norm, samples/s, val_loss) and sample images. Every rank
 * takes part in sampling: rank 0 reads the prompts and sends their text to the others (one
 * broadcast), each rank draws the prompts i with i % world == rank, and each image goes to rank 0
 * (one broadcast from its rank), which writes every file and TensorBoard record. So no rank idles
 * while another samples, and an image does not depend on which rank drew it (one prompt at a time,
 * seeded). Samples are due every {@code sample_steps} optimizer steps (EveryDream2's
 * sample_steps); the prompts file is re-read each time samples are due, as EveryDream2 does; an edit
 * that does not parse is reported and the previous prompts kept.
 *
 * Files: {@code <out>/samples/gsSSSSS-III-<prompt>.png} (one image per prompt, one panel per cfg,
 * left to right) with a {@code .txt} beside it holding the prompt, negative prompt and seed; each
 * written to a temporary name, fsynced and renamed.
 */
public final class RunOutputs implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(RunOutputs.class);

    private final TrainConfig cfg;
    private final Consumer<String> warn;
    private final Path samplesDir;
    private final EventFileWriter events;
    /** The run's data plane (null in one process): prompts and images travel over it. */
    private final dev.dreamcluster.collective.Collective collective;
    private final int rank;
    private final int world;
    /** The prompts file as rank 0 last read it successfully: name and text (every rank holds the same). */
    private String promptsName;
    private String promptsText;
    private SamplePrompts prompts;
    /** The prompts came from a control request (every rank the same): the file is no longer re-read. */
    private boolean promptsReplaced;

    private RunOutputs(TrainConfig cfg, Consumer<String> warn, EventFileWriter events, dev.dreamcluster.collective.Collective collective) {
        this.cfg = cfg;
        this.warn = warn;
        this.samplesDir = cfg.out().resolve("samples");
        this.events = events;
        this.collective = collective;
        this.rank = collective == null ? 0 : collective.rank();
        this.world = collective == null ? 1 : collective.worldSize();
    }

    /**
     * Checks the sample prompts against the model (bad input: a {@link ConfigError} on rank 0), opens
     * the TensorBoard file (rank 0), and draws the pre-training samples when asked for and the run
     * starts at step 0. Every rank calls it (prompts are broadcast).
     *
     * @param collective the run's data plane, or null for one process
     */
    public static RunOutputs open(TrainConfig cfg, dev.dreamcluster.collective.Collective collective, Trainer trainer,
            Consumer<String> warn) {
        OutputsConfig o = cfg.outputs();
        int rank = collective == null ? 0 : collective.rank();
        EventFileWriter events = null;
        if (rank == 0 && o.logdir() != null) {
            String run = o.projectName() + "-" + ZonedDateTime.now(ZoneOffset.UTC).format(DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss"));
            events = EventFileWriter.open(o.logdir().resolve(run));
            LOG.info("TensorBoard events in {}", events.file());
        }
        RunOutputs r = new RunOutputs(cfg, warn, events, collective);
        if (o.samplePrompts() != null) {
            r.loadPrompts(trainer, true);
        }
        if (r.prompts != null && r.prompts.pretrainSamples() && trainer.step() == 0) {
            r.sample(0, trainer.samplingModels(), "", trainer.captions());
        }
        return r;
    }

    /**
     * Rank 0 reads and checks the prompts file (at the start a bad one is an error; later the previous
     * prompts are kept and the problem reported) and broadcasts its text; every rank parses the same
     * text. With no prompts file on rank 0's node at the start, there are no samples.
     */
    private void loadPrompts(Trainer trainer, boolean first) {
        if (rank == 0) {
            Path file = cfg.outputs().samplePrompts();
            try {
                SamplePrompts p = checked(SamplePrompts.read(file, cfg.resolution(), cfg.seed(), cfg.batchSize(), warn), trainer, file);
                promptsText = Files.readString(file, StandardCharsets.UTF_8);
                promptsName = file.toString();
                prompts = p;
            } catch (ConfigError | UncheckedIOException | IOException e) {
                if (first) {
                    throw e instanceof IOException io ? new UncheckedIOException(io) : (RuntimeException) e;
                }
                warn.accept(e.getMessage() + "; keeping the previous sample prompts");
            }
        }
        if (world > 1) {
            String[] got = Exchange.broadcastStrings(collective, 0, promptsName == null ? "" : promptsName, promptsText == null ? ""
                    : promptsText);
            if (rank != 0 && !got[0].isEmpty()) {
                promptsName = got[0];
                promptsText = got[1];
                prompts = SamplePrompts.parse(promptsName, promptsText, cfg.resolution(), cfg.seed(), cfg.batchSize(), w -> { });
            }
        }
    }

    /**
     * Replaces the sample prompts with {@code text} (a control request's; every rank calls it with the
     * same text at the same step boundary, so every rank parses and checks the same); from then on the
     * sample_prompts file is no longer re-read. Samples are drawn at sample_steps (or the prompts'
     * own cadence), from the next one on.
     *
     * @param format "txt" (a prompt a line) or "json" (EveryDream2's sample_prompts.json)
     * @return "N prompts", or "refused: why" (the previous prompts are kept)
     */
    public String usePrompts(String format, String text, Trainer trainer) {
        String name = "sample prompts of a control request." + format;
        try {
            SamplePrompts p = checked(SamplePrompts.parse(name, text, cfg.resolution(), cfg.seed(), cfg.batchSize(), warn), trainer,
                    Path.of("sample_prompts." + format));
            if (p.requests().isEmpty()) {
                return "refused: no prompt in the text";
            }
            prompts = p;
            promptsName = name;
            promptsText = text;
            promptsReplaced = true;
            return p.requests().size() + " prompt(s)";
        } catch (RuntimeException e) { // a ConfigError, or anything else the parser throws: never the run's end
            return "refused: " + (e.getMessage() == null ? e.toString() : e.getMessage());
        }
    }

    private static SamplePrompts checked(SamplePrompts p, Trainer trainer, Path file) {
        int multiple = trainer.samplingModels().sizeMultiple();
        for (int i = 0; i < p.requests().size(); i++) {
            SampleRequest q = p.requests().get(i);
            if (q.width() % multiple != 0 || q.height() % multiple != 0) {
                throw ConfigError.invalid(file + " at sample " + i + " size", "[" + q.width() + ", " + q.height() + "]", "multiples of "
                        + multiple + " for this model");
            }
        }
        return p;
    }

    /** After each optimizer step (every rank): TensorBoard scalars on rank 0, then samples when due. */
    public void afterStep(Trainer trainer, StepMetrics r) {
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
                if (!promptsReplaced) {
                    loadPrompts(trainer, false);
                }
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

    /**
     * Draws every sample prompt from {@code models} at {@code step} (every rank its share), one call
     * per set of weights (the current ones; EMA weights would come with {@code suffix "_ema"}, as
     * EveryDream2 names them).
     *
     * @return the PNG files written (on rank 0; empty elsewhere)
     */
    public List<Path> sample(int step, SamplingModels models, String suffix, List<String> captions) {
        long t0 = System.nanoTime();
        List<SampleRequest> requests = prompts.requests();
        List<BufferedImage> mine = new ArrayList<>();
        List<Long> seeds = new ArrayList<>();
        for (int i = 0; i < requests.size(); i++) {
            SampleRequest q = requests.get(i);
            long seed = q.seed() == -1 ? new SplittableRandom().nextLong(1L << 30) : q.seed();
            seeds.add(seed);
            mine.add(i % world == rank ? sheet(q, prompt(q, step, i, captions), seed, models) : null);
        }
        List<Path> written = new ArrayList<>();
        for (int i = 0; i < requests.size(); i++) {
            SampleRequest q = requests.get(i);
            BufferedImage sheet = mine.get(i);
            long seed = seeds.get(i);
            if (world > 1) { // the drawing rank's pixels (24-bit RGB, exact in float32) and its seed to rank 0
                Exchange.Image got = Exchange.broadcastImage(collective, i % world, sheet, q.width() * prompts.cfgs().size(), q.height(),
                        seed);
                sheet = got.image();
                seed = got.seed();
            }
            if (rank == 0) {
                written.add(write(step, i, q, prompt(q, step, i, captions), seed, sheet, suffix));
            }
        }
        if (rank == 0) {
            LOG.info("step {}: {} sample image(s) in {} ({} s over {} rank(s))", step, written.size(), samplesDir,
                    String.format("%.1f", (System.nanoTime() - t0) / 1e9), world);
        }
        return written;
    }

    /** The prompt of request {@code i}: its text, or a training caption chosen by (step, i) for random-caption samples. */
    private static String prompt(SampleRequest q, int step, int i, List<String> captions) {
        return q.randomCaption() && !captions.isEmpty() ? captions.get((int) Math.floorMod(step * 7919L + i, (long) captions.size()))
                : q.prompt();
    }

    /** One panel per cfg, left to right. */
    private BufferedImage sheet(SampleRequest q, String prompt, long seed, SamplingModels models) {
        BufferedImage sheet = new BufferedImage(q.width() * prompts.cfgs().size(), q.height(), BufferedImage.TYPE_INT_RGB);
        Graphics2D g = sheet.createGraphics();
        for (int c = 0; c < prompts.cfgs().size(); c++) {
            BufferedImage img = Sampler.sample(models, prompt, q.negativePrompt(), seed, q.width(), q.height(), prompts.cfgs().get(c),
                    prompts.scheduler(), prompts.steps());
            g.drawImage(img, c * q.width(), 0, null);
        }
        g.dispose();
        return sheet;
    }

    private Path write(int step, int i, SampleRequest q, String prompt, long seed, BufferedImage sheet, String suffix) {
        try {
            Files.createDirectories(samplesDir);
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
            if (events != null) {
                String tag = q.randomCaption() ? String.format("sample_%03d%s", i, suffix) : String.format("sample_%03d_%s%s", i, suffix, clean);
                events.image(tag, step, png.toByteArray(), sheet.getWidth(), sheet.getHeight());
            }
            return file;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write samples to " + samplesDir, e);
        }
    }

    /**
     * At the end of the run, after the diffusers final/ folder: with {@code save_single_file}, rank 0
     * also writes {@code <out>/final.safetensors} in the LDM layout (fp16 unless save_full_precision).
     */
    public void finish(Trainer trainer) {
        if (rank != 0 || !cfg.outputs().saveSingleFile()) {
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
