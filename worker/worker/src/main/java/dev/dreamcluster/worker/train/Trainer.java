package dev.dreamcluster.worker.train;

import dev.dreamcluster.collective.Collective;
import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.config.ResolvedTrainingConfig;
import dev.dreamcluster.config.TrainConfig;
import dev.dreamcluster.freeze.Component;
import dev.dreamcluster.io.StepMetrics;
import dev.dreamcluster.layout.ParamLayout;
import dev.dreamcluster.model.DiffusersFolder;
import dev.dreamcluster.safetensors.DType;
import dev.dreamcluster.worker.data.ImageItem;
import dev.dreamcluster.worker.model.Tensors;
import dev.dreamcluster.worker.sample.SamplingModels;
import dev.dreamcluster.worker.train.bundle.ModelBundle;
import dev.dreamcluster.worker.train.ckpt.Checkpointer;
import dev.dreamcluster.worker.train.ckpt.EmaWeights;
import dev.dreamcluster.worker.train.ckpt.Resume;
import dev.dreamcluster.worker.train.ckpt.TrainerState;
import dev.dreamcluster.worker.train.data.BatchCut;
import dev.dreamcluster.worker.train.data.DataCursor;
import dev.dreamcluster.worker.train.grad.GradSync;
import dev.dreamcluster.worker.train.grad.ParamGroup;
import dev.dreamcluster.worker.train.step.DiffusionStep;
import dev.dreamcluster.worker.train.step.TrainStep;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A training node's parts, put together once per run: the {@link ModelBundle} (weights, models,
 * measured ops), the {@link DataCursor}, one {@link ParamGroup} per component over the run's
 * {@link ParamLayout} with the {@link GradSync} between ranks, the {@link DiffusionStep} and the
 * {@link TrainStep} that make an update, and the {@link Checkpointer}. Not thread-safe: one thread
 * owns it, DJL and autograd. Every random draw derives from (seed, micro-step), so a resumed run
 * continues bit for bit, on any number of ranks.
 */
public final class Trainer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(Trainer.class);

    private final TrainConfig cfg;
    private final Collective collective;
    private final ModelBundle bundle;
    private final DataCursor data;
    private final List<ParamGroup> groups = new ArrayList<>();
    private final GradSync sync;
    private final DiffusionStep diffusion;
    private final TrainStep step;
    private final Checkpointer checkpointer;

    /** @param resume a checkpoint folder written by this class, or null to start from {@code cfg.model()} */
    /** How the models compute (plain, or recomputing their blocks in backward): for tests of the plumbing. */
    dev.dreamcluster.worker.model.Ops ops() {
        return bundle.ops;
    }

    public Trainer(TrainConfig cfg, ResolvedTrainingConfig opt, Path resume, Consumer<String> warn) {
        this(cfg, opt, resume, warn, null);
    }

    /**
     * @param collective the data plane of a multi-worker run (each rank runs its slice of every global
     *     batch and the optimizer on its shard), or null for one process
     */
    public Trainer(TrainConfig cfg, ResolvedTrainingConfig opt, Path resume, Consumer<String> warn, Collective collective) {
        this(cfg, opt, resume, warn, collective, ComputeConfig.CPU_FP32);
    }

    /** @param compute the device and precision, and this node's optimizer threads and overlap */
    public Trainer(TrainConfig cfg, ResolvedTrainingConfig opt, Path resume, Consumer<String> warn, Collective collective,
            ComputeConfig compute) {
        this.cfg = cfg;
        this.collective = collective;
        int rank = collective == null ? 0 : collective.rank();
        int world = collective == null ? 1 : collective.worldSize();
        RankAgreement.check(collective, "seed", cfg.seed());
        ComputeReplica replica = ComputeReplica.of(compute); // loads the engine (a GPU needs the CUDA libtorch set up by the launcher)
        Path modelPath = resume != null ? resume.resolve("model") : cfg.model();
        DiffusersFolder folder = DiffusersFolder.read(modelPath); // a diffusers folder, or a single LDM .safetensors
        if (resume != null) {
            Resume.checkSameModel(resume, DiffusersFolder.read(cfg.model()), folder);
        }
        this.bundle = ModelBundle.load(modelPath, folder, opt, replica);
        this.data = new DataCursor(cfg, warn);
        // the one layout of the flat buffers and shard cuts: the same arithmetic the plan hash covers
        ParamLayout layout = ParamLayout.of(folder, bundle.freeze, world);
        int threads = compute.optimizerThreadCount();
        for (Component c : new Component[] {Component.UNET, Component.TEXT_ENCODER}) {
            var config = c == Component.UNET ? opt.unet() : opt.textEncoder();
            groups.add(replica.stateOnDevice
                    ? ParamGroup.onDevice(layout.part(c), bundle.compute(c), bundle.masters(c), config, data.totalSteps(), rank, bundle.manager())
                    : ParamGroup.onHost(layout.part(c), bundle.compute(c), bundle.masters(c), config, data.totalSteps(), rank, threads));
        }
        this.sync = new GradSync(collective, compute.overlap());
        if (world > 1) {
            LOG.info("rank {}: communication thread {} (each component's collectives overlapped with the other's host work)", rank,
                    sync.overlaps() ? "on" : "off");
        }
        int at = 0;
        TrainerState state = resume == null ? null : TrainerState.read(resume);
        if (state != null) {
            at = state.step();
            data.resumeAt(state.epoch(), state.batchIndex(), state.microStep());
        }
        BatchCut cut = BatchCut.agree(cfg.batchSize(), compute.capacity(), sync, state == null ? null : state.batchSplit());
        if (world > 1) {
            LOG.info("rank {}: images per rank {}{}", rank, cut.split(), state != null && state.batchSplit() != null
                    && state.batchSplit().length == world ? " (the checkpoint's cut)" : cut.measure() ? " until measured" : "");
        }
        // the startup check at this rank's real shapes: its images per micro-batch, every bucket's latent size
        java.util.function.IntConsumer checkOps = n -> bundle.checkOps(n, data.latentSizes(bundle.latentFactor), cfg.clipSkip());
        checkOps.accept(cut.split().counts()[rank]);
        EmaWeights ema = EmaWeights.create(cfg.features(), data.totalSteps(), groups.get(0), groups.get(1), rank, resume);
        this.checkpointer = new Checkpointer(cfg, opt, bundle, groups, collective, ema);
        if (resume != null) {
            checkpointer.resume(resume);
        }
        refuseNothingToTrain(at);
        this.diffusion = new DiffusionStep(cfg, bundle, rank, world, cut.split());
        this.step = new TrainStep(cfg, bundle, diffusion, data, groups, sync, ema, at, cut.measure(), checkOps);
        LOG.info("training {} images ({} steps/epoch), {} optimizer steps, unet {} trainable tensors, text encoder {}, on {}",
                data.items().size(), data.stepsPerEpoch(), data.totalSteps(), groups.get(0).names().size(), groups.get(1).names().size(),
                replica);
    }

    /**
     * A run in which no trainable tensor would ever see an lr above 0 would end looking like a run
     * that trained: refused before the first step.
     */
    private void refuseNothingToTrain(int from) {
        if (groups.stream().allMatch(ParamGroup::isEmpty)) {
            throw new ConfigError("nothing would train: every tensor of the UNet and the text encoder is frozen "
                    + "(disable_unet_training, disable_textenc_training, text_encoder_freezing); allowed: at least one trainable tensor");
        }
        for (int s = from; s < data.totalSteps(); s++) {
            for (ParamGroup g : groups) {
                if (!g.isEmpty() && g.lrAt(s) > 0) {
                    return;
                }
            }
        }
        if (from < data.totalSteps()) {
            throw new ConfigError("nothing would train: the learning rate of every trainable component is 0 at every step from " + from
                    + " to " + data.totalSteps() + "; allowed: an lr > 0 for a trainable component");
        }
    }

    /** One optimizer update (see {@link TrainStep}). */
    public StepMetrics trainStep() {
        return step.run();
    }

    /**
     * Mean loss over the fixed validation set: the validation images, fixed noise and timesteps. Every
     * rank must call it (each computes its share; one all-reduce).
     */
    public double validate() {
        return diffusion.validate(data.validation(), data.buckets(), sync);
    }

    public int totalSteps() {
        return data.totalSteps();
    }

    public int step() {
        return step.step();
    }

    public int epoch() {
        return data.epoch();
    }

    /** Optimizer steps that changed the weights (applied, not skipped) in this process's run so far. */
    public int appliedSteps() {
        return step.appliedSteps();
    }

    public int valEveryNSteps() {
        return data.valEveryNSteps();
    }

    /** True when the next step starts a new epoch (for save_every_n_epochs). */
    public boolean atEpochEnd() {
        return data.atEpochEnd();
    }

    /** Sees every micro-batch's model inputs (see {@link DiffusionStep.InputRecorder}). */
    public void recordInputs(DiffusionStep.InputRecorder recorder) {
        diffusion.recordInputs(recorder);
    }

    /** Writes a checkpoint of the current step (every rank must call it: the optimizer gather is a collective). */
    public void checkpoint(Path dir) {
        checkpoint(dir, null);
    }

    /** As {@link #checkpoint(Path)}, with the run's control state ({@code runControl}, null for none) in trainer_state.json. */
    public void checkpoint(Path dir, com.fasterxml.jackson.databind.node.ObjectNode runControl) {
        checkpointer.checkpoint(dir, step.step(), data, diffusion.split(), runControl);
    }

    /** The current weights as a diffusers folder (and the EMA beside it when EMA is on). */
    public void saveModel(Path dir, DType dtype) {
        checkpointer.saveModel(dir, dtype);
    }

    /** Every rank waits here for every other (no-op in one process). */
    public void barrier() {
        if (collective != null && collective.worldSize() > 1) {
            collective.barrier();
        }
    }

    /** The current weights as models to draw samples from (this thread only, between steps). */
    public SamplingModels samplingModels() {
        return bundle.samplingModels(cfg.clipSkip());
    }

    /** The training captions, in dataset order (EveryDream2's random-caption samples draw from them). */
    public List<String> captions() {
        return data.items().stream().map(ImageItem::caption).toList();
    }

    /** The model's configs. */
    public DiffusersFolder model() {
        return bundle.folder;
    }

    /** The weights the models compute with, by component and diffusers name. */
    public DiffusersFolder.Weights weightValues() {
        return (c, p) -> Tensors.read(bundle.compute(c).get(p.name()));
    }

    /** Trainable tensor names per component, for tests and logs. */
    public List<String> trainableNames(Component c) {
        return groups.stream().filter(g -> g.component() == c).findFirst().map(g -> new ArrayList<>(g.names())).orElseGet(ArrayList::new);
    }

    @Override
    public void close() {
        sync.close();
        groups.forEach(ParamGroup::close);
        bundle.close();
    }
}
