package dev.dreamcluster.worker.train;

import dev.dreamcluster.config.ValidationConfig;
import dev.dreamcluster.config.TrainConfig;
import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.GradientCollector;
import dev.dreamcluster.collective.Collective;
import dev.dreamcluster.layout.ParamLayout;
import dev.dreamcluster.config.ComponentConfig;
import dev.dreamcluster.config.LrSchedule;
import dev.dreamcluster.config.ResolvedConfigJson;
import dev.dreamcluster.config.ResolvedTrainingConfig;
import dev.dreamcluster.diffusion.DdpmScheduler;
import dev.dreamcluster.freeze.Component;
import dev.dreamcluster.freeze.FreezePlan;
import dev.dreamcluster.io.StepMetrics;
import dev.dreamcluster.io.AtomicFiles;
import dev.dreamcluster.model.DiffusersFolder;
import dev.dreamcluster.optim.OptimizerStateFile;
import dev.dreamcluster.safetensors.DType;
import dev.dreamcluster.tokenizer.ClipTokenizer;
import dev.dreamcluster.worker.data.AspectBuckets;
import dev.dreamcluster.worker.data.Batch;
import dev.dreamcluster.worker.data.DatasetScanner;
import dev.dreamcluster.worker.data.EpochPlan;
import dev.dreamcluster.worker.data.ImageItem;
import dev.dreamcluster.worker.data.ImageLoader;
import dev.dreamcluster.worker.model.ClipTextModel;
import dev.dreamcluster.worker.model.ModelWeights;
import dev.dreamcluster.worker.model.Ops;
import dev.dreamcluster.worker.check.StartupCheck;
import dev.dreamcluster.worker.model.Tensors;
import dev.dreamcluster.worker.model.UNetModel;
import dev.dreamcluster.worker.model.VaeModel;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Fine-tunes Stable Diffusion on one process (CPU): the EveryDream step with DreamCluster's
 * optimizers over flat parameter buffers. Not thread-safe: one thread owns it, DJL and autograd.
 * Every random draw derives from (seed, micro-step), so a resumed run continues bit for bit.
 */
public final class Trainer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(Trainer.class);

    private final TrainConfig cfg;
    private final ResolvedTrainingConfig opt;
    private final NDManager manager;
    private final DiffusersFolder folder;
    private final ModelWeights teWeights;
    private final ModelWeights unetWeights;
    private final ModelWeights vaeWeights;
    private final ComputeReplica replica;
    /** The models' operations: the convolution form measured per shape by the startup check. */
    private final Ops ops;
    private final ClipTextModel textEncoder;
    private final UNetModel unet;
    private final VaeModel vae;
    private final ClipTokenizer tokenizer;
    private final DdpmScheduler scheduler;
    private final List<ImageItem> items;
    /** Validation images: held out by validation_config, else the first val_count training images. */
    private final List<ImageItem> valItems;
    private final EmaWeights ema;
    private final int stepsPerEpoch;
    private final AspectBuckets buckets;
    private final Collective collective;
    private final int rank;
    private final int world;
    private final FlatParams unetFlat;
    private final FlatParams teFlat;
    private final ShardedParams unetShard;
    private final ShardedParams teShard;
    /** The communication thread of the host path (inline with one rank or on the GPU path). */
    private final Overlap overlap;
    private final LrSchedule unetLr;
    private final LrSchedule teLr;
    private final int totalSteps;
    private final int latentFactor;
    private int step;
    private int epoch;
    private int batchIndex;
    private long microStep;
    private int skipped;
    private int skippedInARow;
    private int applied;
    /** More consecutive skipped steps than this halt the run (max_skipped_steps; default 3, or 20 with fp16's GradScaler). */
    private final int maxSkippedSteps;
    /** item path + bucket size to the unscaled latent mean and log-variance, when latent_cache is on. */
    private final java.util.Map<String, float[][]> latentCache = new java.util.HashMap<>();
    private List<Batch> plan;
    private InputRecorder inputRecorder;

    /**
     * Sees every micro-batch's model inputs as this rank computes them: the scaled latents, the noise
     * (offset included), the timesteps and the token ids after caption dropout. For comparing the
     * training with an independent implementation fed the same inputs; costs one copy of each.
     */
    public interface InputRecorder {
        void record(long microStep, float[] latents, float[] noise, int[] timesteps, long[] tokenIds, long[] latentShape);
    }

    public void recordInputs(InputRecorder recorder) {
        this.inputRecorder = recorder;
    }

    /**
     * @param resume a checkpoint folder written by this class, or null to start from {@code cfg.model()}
     */
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

    /** @param compute the device and precision (fp32 masters stay in the host's flat buffers either way) */
    public Trainer(TrainConfig cfg, ResolvedTrainingConfig opt, Path resume, Consumer<String> warn, Collective collective,
            ComputeConfig compute) {
        this.cfg = cfg;
        this.opt = opt;
        this.collective = collective;
        this.rank = collective == null ? 0 : collective.rank();
        this.world = collective == null ? 1 : collective.worldSize();
        if (cfg.batchSize() % world != 0) {
            throw new dev.dreamcluster.config.ConfigError("batch_size: " + cfg.batchSize() + " is not allowed with " + world
                    + " workers (allowed: a multiple of the worker count; each worker takes an equal slice)");
        }
        RankAgreement.check(collective, "seed", cfg.seed());
        this.replica = ComputeReplica.of(compute); // loads the engine (a GPU needs the CUDA libtorch set up by the launcher)
        JniUtils.setGradMode(false); // autograd records only inside the step's GradientCollector
        this.manager = NDManager.newBaseManager(replica.djlDevice);
        Path modelPath = resume != null ? resume.resolve("model") : cfg.model();
        this.folder = DiffusersFolder.read(modelPath); // a diffusers folder, or a single LDM .safetensors
        if (resume != null) {
            Resume.checkSameModel(resume, DiffusersFolder.read(cfg.model()), folder);
        }
        dev.dreamcluster.model.TensorSource source = dev.dreamcluster.model.TensorSource.open(modelPath, folder);
        if (folder.textEncoder().numHiddenLayers() != opt.textEncoderFreezing().numLayers()) {
            throw new dev.dreamcluster.config.ConfigError(folder.dir().resolve("text_encoder/config.json") + " at num_hidden_layers: "
                    + folder.textEncoder().numHiddenLayers() + " is not allowed (the optimizer config was resolved for "
                    + opt.textEncoderFreezing().numLayers() + " text encoder layers)");
        }
        FreezePlan freeze = FreezePlan.of(opt);
        java.util.function.Predicate<String> teTrain = n -> freeze.isTrainable(Component.TEXT_ENCODER, n);
        java.util.function.Predicate<String> unetTrain = n -> freeze.isTrainable(Component.UNET, n);
        boolean shared = replica.sharesMasters(); // else the host masters carry no gradients; the replica does
        this.teWeights = ModelWeights.load(manager, folder, source, Component.TEXT_ENCODER, Device.cpu(), shared ? teTrain : n -> false);
        this.unetWeights = ModelWeights.load(manager, folder, source, Component.UNET, Device.cpu(), shared ? unetTrain : n -> false);
        this.vaeWeights = ModelWeights.load(manager, folder, source, Component.VAE, Device.cpu(), n -> false);
        ModelWeights teCompute = replica.place(teWeights, manager, teTrain, true);
        ModelWeights unetCompute = replica.place(unetWeights, manager, unetTrain, true);
        this.ops = new Ops();
        this.textEncoder = new ClipTextModel(folder.textEncoder(), teCompute, ops);
        this.unet = new UNetModel(folder.unet(), unetCompute, ops);
        this.vae = new VaeModel(folder.vae(), replica.place(vaeWeights, manager, n -> false, false), ops);
        this.tokenizer = ClipTokenizer.load(folder.dir().resolve("tokenizer"));
        this.scheduler = folder.scheduler();
        this.latentFactor = 1 << (folder.vae().blockOutChannels().size() - 1);
        DataSplit split = DataSplit.of(cfg, warn);
        this.items = split.train();
        this.valItems = split.validation();
        if (items.isEmpty()) {
            throw new dev.dreamcluster.config.ConfigError("data_root: " + dev.dreamcluster.config.Json.quote(cfg.dataRoot().toString())
                    + " holds no readable images (allowed: a folder with jpg, jpeg, png or webp images; unreadable ones are skipped)");
        }
        this.buckets = new AspectBuckets(cfg.resolution());
        int perEpoch = EpochPlan.plan(items, buckets, cfg.batchSize(), cfg.condDropout(), cfg.seed(), 0).size();
        this.stepsPerEpoch = (perEpoch + cfg.gradAccum() - 1) / cfg.gradAccum();
        this.totalSteps = cfg.maxSteps() != null ? cfg.maxSteps()
                : Math.max(1, cfg.maxEpochs() * ((perEpoch + cfg.gradAccum() - 1) / cfg.gradAccum()));
        int threads = Integer.getInteger("dreamcluster.optimizer.threads", Runtime.getRuntime().availableProcessors());
        // the one layout of the flat buffers and shard cuts: the same arithmetic the plan hash covers
        ParamLayout layout = ParamLayout.of(folder, freeze, world);
        this.unetFlat = new FlatParams(layout.part(Component.UNET), unetCompute, unetWeights);
        this.teFlat = new FlatParams(layout.part(Component.TEXT_ENCODER), teCompute, teWeights);
        this.unetShard = new ShardedParams(unetFlat, layout.part(Component.UNET), opt.unet(), rank, threads);
        this.teShard = new ShardedParams(teFlat, layout.part(Component.TEXT_ENCODER), opt.textEncoder(), rank, threads);
        if (collective instanceof dev.dreamcluster.nccl.NcclCollective nccl && replica.device.isGpu()) {
            unetShard.onDevice(nccl, manager); // reduce-scatter and all-gather on the GPU, the optimizer on the host
            teShard.onDevice(nccl, manager);
        }
        this.overlap = new Overlap(world > 1 && !unetShard.onDevice() && !teShard.onDevice());
        if (world > 1) {
            LOG.info("rank {}: communication thread {} (reduce-scatter and all-gather overlapped with the other component's host work)",
                    rank, overlap.enabled() ? "on" : "off");
        }
        this.unetLr = schedule(opt.unet());
        this.teLr = schedule(opt.textEncoder());
        this.maxSkippedSteps = cfg.maxSkippedSteps() != null ? cfg.maxSkippedSteps() : replica.scaler != null ? 20 : 3;
        refuseNothingToTrain();
        if (resume != null) {
            TrainerState s = TrainerState.read(resume);
            step = s.step();
            epoch = s.epoch();
            batchIndex = s.batchIndex();
            microStep = s.microStep();
            Resume.loadOptimizer(unetShard, resume, "unet");
            Resume.loadOptimizer(teShard, resume, "text_encoder");
        }
        this.ema = EmaWeights.create(cfg.features(), totalSteps, unetFlat, teFlat, rank, resume);
        this.plan = EpochPlan.plan(items, buckets, cfg.batchSize(), cfg.condDropout(), cfg.seed(), epoch);
        StartupCheck.run(ops, manager, replica.computeDtype(), cfg.batchSize() / world, latentSizes(),
                (latents, ids) -> unet.forward(replica.input(latents), new int[(int) latents.getShape().get(0)],
                        textEncoder.forward(ids, cfg.clipSkip())));
        LOG.info("training {} images ({} batches/epoch), {} optimizer steps, unet {} trainable tensors, text encoder {}, on {}",
                items.size(), perEpoch, totalSteps, unetFlat.names.size(), teFlat.names.size(), replica);
    }

    /** The latent [h, w] of every bucket the training images fall in: the shapes the steps will run at. */
    private java.util.Set<List<Integer>> latentSizes() {
        java.util.Set<List<Integer>> sizes = new java.util.TreeSet<>(java.util.Comparator.comparing(Object::toString));
        for (ImageItem it : items) {
            int[] s = buckets.forSize(it.width(), it.height());
            sizes.add(List.of(s[1] / latentFactor, s[0] / latentFactor));
        }
        return sizes;
    }

    /**
     * A run in which no trainable tensor would ever see an lr above 0 would end looking like a run
     * that trained: refused before the first step.
     */
    private void refuseNothingToTrain() {
        if (unetFlat.isEmpty() && teFlat.isEmpty()) {
            throw new dev.dreamcluster.config.ConfigError("nothing would train: every tensor of the UNet and the text encoder is frozen "
                    + "(disable_unet_training, disable_textenc_training, text_encoder_freezing); allowed: at least one trainable tensor");
        }
        if (step >= totalSteps) {
            return; // a resume of a finished run: nothing left to do, nothing to refuse
        }
        for (long s = step; s < totalSteps; s++) {
            if ((!unetFlat.isEmpty() && unetLr != null && unetLr.lrAt(s) > 0) || (!teFlat.isEmpty() && teLr != null && teLr.lrAt(s) > 0)) {
                return;
            }
        }
        throw new dev.dreamcluster.config.ConfigError("nothing would train: the learning rate of every trainable component is 0 at "
                + "every step from " + step + " to " + totalSteps + " (unet lr " + (unetLr == null ? "-" : unetLr.lr())
                + ", text encoder lr " + (teLr == null ? "-" : teLr.lr()) + "); allowed: an lr > 0 for a trainable component");
    }

    /** Optimizer steps that changed the weights (applied, not skipped), this process's run so far. */
    public int appliedSteps() {
        return applied;
    }

    private LrSchedule schedule(ComponentConfig c) {
        return c == null ? null : c.schedule(totalSteps);
    }

    public int totalSteps() {
        return totalSteps;
    }

    public int step() {
        return step;
    }

    public int epoch() {
        return epoch;
    }

    /** One optimizer update: grad_accum micro-batches, averaged gradients, clipping, optimizers. */
    public StepMetrics trainStep() {
        long t0 = System.nanoTime();
        double loss = 0;
        int samples = 0;
        for (int micro = 0; micro < cfg.gradAccum(); micro++) {
            Batch batch = nextBatch();
            loss += microBatch(batch, microStep++); // backward adds into each trainable tensor's .grad
            samples += batch.items().size(); // the global batch: every rank reports the same throughput
        }
        float mean = (float) (1.0 / cfg.gradAccum() / replica.lossScale()); // fp16: the loss scale comes off here
        long tComm = System.nanoTime();
        reduceGrads(mean); // each rank: the mean gradient of its own shard
        // one global L2 norm over every trainable tensor: shard partial sums, summed over ranks
        double[] sums = {unetShard.shardSumSquares() + teShard.shardSumSquares(), loss};
        if (world > 1) {
            float[] f = {(float) sums[0], (float) sums[1]};
            collective.allReduce(f, 2);
            sums = new double[] {f[0], f[1] / world};
        }
        double gradNorm = Math.sqrt(sums[0]);
        loss = sums[1];
        double comm = (System.nanoTime() - tComm) / 1e9;
        if (!Double.isFinite(gradNorm)) {
            // as a GradScaler does: never let a NaN/Inf gradient into the weights or the optimizer state
            String why = "non-finite gradient, first in " + firstNonFinite() + (replica.scaler == null ? ""
                    : " (fp16 loss scale " + replica.lossScale() + " backs off)");
            unetFlat.writeBack(manager);
            teFlat.writeBack(manager);
            replica.afterStep(false, step);
            step++;
            skipped++;
            skippedInARow++;
            LOG.warn("step {}: update skipped: {} ({} in a row, {} in all)", step, why, skippedInARow, skipped);
            if (skippedInARow > maxSkippedSteps) {
                throw new dev.dreamcluster.run.TrainingHalted("step " + step + ": " + skippedInARow + " consecutive steps skipped, more than "
                        + "max_skipped_steps " + maxSkippedSteps + " allows: " + why + "; the weights have not changed since step "
                        + (step - skippedInARow) + " (lower the lr, set clip_grad_norm, or check the data)");
            }
            double secs = (System.nanoTime() - t0) / 1e9;
            return new StepMetrics(step, loss / cfg.gradAccum(), 0, 0, gradNorm, samples / secs, secs - comm, comm, 0, Double.NaN, why);
        }
        skippedInARow = 0;
        applied++;
        if (cfg.clipGradNorm() != null && gradNorm > cfg.clipGradNorm()) {
            float coef = (float) (cfg.clipGradNorm() / (gradNorm + 1e-6));
            unetShard.scaleGrads(coef);
            teShard.scaleGrads(coef);
        }
        double lrU = unetLr == null ? 0 : unetLr.lrAt(step);
        double lrT = teLr == null ? 0 : teLr.lrAt(step);
        double[] optimizerAndComm = stepAndGather(lrU, lrT); // every replica receives every rank's updated shard
        double optimizer = optimizerAndComm[0];
        comm += optimizerAndComm[1];
        replica.afterStep(true, step);
        step++;
        if (ema != null) {
            ema.afterStep(step);
        }
        double secs = (System.nanoTime() - t0) / 1e9;
        return new StepMetrics(step, loss / cfg.gradAccum(), lrU, lrT, gradNorm, samples / secs, secs - comm - optimizer, comm,
                optimizer, Double.NaN);
    }

    /**
     * Where the first non-finite gradient is: "unet conv_out.weight" (and "on rank r" in a cluster run:
     * each rank looks in its own local gradients, still in libtorch's .grad before the write-back
     * zeroes them, and one small all-reduce tells every rank what each found). Runs only on a skipped
     * step; its cost is one pass over the gradients in libtorch.
     */
    private String firstNonFinite() {
        int code = 0; // 1 + index over the UNet's then the text encoder's trainable tensors; 0: none here
        List<NDArray> all = new ArrayList<>(unetFlat.arrays);
        all.addAll(teFlat.arrays);
        for (int i = 0; i < all.size() && code == 0; i++) {
            try (NDArray g = all.get(i).getGradient(); NDArray bad = g.isInfinite().logicalOr(g.isNaN()).any()) {
                if (bad.getBoolean()) {
                    code = i + 1;
                }
            }
        }
        float[] codes = new float[world]; // tensor counts are far below 2^24: exact in float
        codes[rank] = code;
        if (world > 1) {
            collective.allReduce(codes, world);
        }
        for (int r = 0; r < world; r++) {
            int c = (int) codes[r];
            if (c > 0) {
                int i = c - 1;
                String where = i < unetFlat.names.size() ? "unet " + unetFlat.names.get(i)
                        : "text_encoder " + teFlat.names.get(i - unetFlat.names.size());
                return where + (world > 1 ? " on rank " + r : "");
            }
        }
        return "the loss (every gradient tensor is finite; their squared sum overflowed)";
    }

    /**
     * Both components' gradient reduce-scatters. On the host path the UNet's runs on the
     * communication thread while the compute thread flattens the text encoder's gradients.
     */
    private void reduceGrads(float mean) {
        if (!overlap.enabled()) {
            unetShard.reduceGrads(collective, mean);
            teShard.reduceGrads(collective, mean);
            return;
        }
        unetShard.flattenGrads(mean);
        Overlap.Pending unetReduced = overlap.start(() -> unetShard.reduceFlat(collective));
        teShard.flattenGrads(mean);
        unetReduced.join();
        teShard.reduceFlat(collective);
    }

    /**
     * Both optimizer steps and all-gathers, parameters written back into libtorch (frozen tensors never
     * are: they stay bit-identical). On the host path the UNet's all-gather runs while the text
     * encoder's optimizer steps, and the text encoder's while the UNet's parameters are written back.
     * Returns {optimizer seconds, exposed communication seconds}: the gather window's wall time less
     * the work done on the compute thread inside it.
     */
    private double[] stepAndGather(double lrU, double lrT) {
        long t0 = System.nanoTime();
        unetShard.step(lrU);
        long t1 = System.nanoTime();
        Overlap.Pending unetGathered = overlap.start(() -> unetShard.gatherParams(collective));
        long t2 = System.nanoTime();
        teShard.step(lrT);
        long t3 = System.nanoTime();
        unetGathered.join();
        Overlap.Pending teGathered = overlap.start(() -> teShard.gatherParams(collective));
        long t4 = System.nanoTime();
        unetFlat.writeBack(manager);
        long t5 = System.nanoTime();
        teGathered.join();
        long t6 = System.nanoTime();
        teFlat.writeBack(manager);
        double optimizer = (t1 - t0 + t3 - t2) / 1e9;
        double comm = (t6 - t1 - (t3 - t2) - (t5 - t4)) / 1e9;
        return new double[] {optimizer, comm};
    }

    /**
     * The loss of this rank's slice of one global micro-batch; its gradients are accumulated by
     * autograd. Noise and timesteps are drawn for the whole global batch (same draws on every rank and
     * in a one-process run), then sliced, so N workers compute what one would.
     */
    private double microBatch(Batch global, long index) {
        SplittableRandom rnd = new SplittableRandom(mix(cfg.seed(), index));
        int gb = global.items().size();
        int lo = rank * gb / world;
        int hi = (rank + 1) * gb / world;
        int h = global.height();
        int w = global.width();
        int per = 4 * (h / latentFactor) * (w / latentFactor);
        NoiseDraws draws = NoiseDraws.draw(rnd, gb, h / latentFactor, w / latentFactor, cfg.features(),
                (float) cfg.zeroFrequencyNoiseRatio(), scheduler.numTrainTimesteps(), ClipTokenizer.MAX_LENGTH,
                folder.textEncoder().hiddenSize());
        float[] vaeNoiseAll = draws.vaeNoise();
        int[] tAll = draws.timesteps();
        float[] noiseAll = draws.noise();
        Batch batch = global.slice(lo, hi);
        int b = hi - lo;
        Shape latentShape = new Shape(b, 4, h / latentFactor, w / latentFactor);
        int[] t = java.util.Arrays.copyOfRange(tAll, lo, hi);
        try (NDScope scope = new NDScope()) {
            NDArray vaeNoise = Tensors.of(manager, java.util.Arrays.copyOfRange(vaeNoiseAll, lo * per, hi * per), latentShape);
            NDArray latents = cfg.latentCache() ? cachedLatents(batch, latentShape, vaeNoise) : encode(batch, vaeNoise);
            NDArray noise = Tensors.of(manager, java.util.Arrays.copyOfRange(noiseAll, lo * per, hi * per), latentShape);
            NDArray noisy = latents.mul(perSample(t, true)).add(noise.mul(perSample(t, false)));
            NDArray target = scheduler.prediction() == DdpmScheduler.Prediction.EPSILON ? noise
                    : noise.mul(perSample(t, true)).sub(latents.mul(perSample(t, false)));
            NDArray ids = tokens(batch.captions());
            if (inputRecorder != null) {
                inputRecorder.record(index, Tensors.read(latents), Tensors.read(noise), t, ids.toLongArray(), latentShape.getShape());
            }
            try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                NDArray states = textEncoder.forward(ids, cfg.clipSkip());
                if (draws.perturbation() != null) {
                    int span = ClipTokenizer.MAX_LENGTH * folder.textEncoder().hiddenSize();
                    states = states.add(Tensors.of(manager, java.util.Arrays.copyOfRange(draws.perturbation(), lo * span,
                            hi * span), states.getShape()));
                }
                NDArray pred = ComputeReplica.fp32(unet.forward(replica.input(noisy), t, states));
                NDArray loss = DiffusionLoss.loss(pred, target, t, scheduler, cfg.features(), lossScales(batch));
                gc.backward(replica.scaler == null ? loss : loss.mul(Tensors.of(manager, new float[] {(float) replica.lossScale()}, new Shape())));
                return loss.getFloat();
            }
        }
    }

    private static float[] lossScales(Batch batch) {
        float[] v = new float[batch.items().size()];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) batch.items().get(i).lossScale();
        }
        return v;
    }

    private NDArray encode(Batch batch, NDArray vaeNoise) {
        int b = batch.items().size();
        float[] px = new float[b * 3 * batch.height() * batch.width()];
        for (int i = 0; i < b; i++) {
            ImageLoader.load(batch.items().get(i), batch.width(), batch.height(), px, i * 3 * batch.height() * batch.width(),
                    batch.flipped(i));
        }
        return vae.sampleScaled(Tensors.of(manager, px, new Shape(b, 3, batch.height(), batch.width())), vaeNoise);
    }

    /** Latents from cached (mean, logvar) per image, encoded one image at a time on first use. */
    private NDArray cachedLatents(Batch batch, Shape latentShape, NDArray vaeNoise) {
        int b = batch.items().size();
        int per = (int) (latentShape.size() / b);
        float[] mean = new float[b * per];
        float[] logvar = new float[b * per];
        for (int i = 0; i < b; i++) {
            ImageItem it = batch.items().get(i);
            String key = it.path() + "@" + batch.width() + "x" + batch.height() + (batch.flipped(i) ? "/flipped" : "");
            float[][] d = latentCache.get(key);
            if (d == null) {
                float[] px = new float[3 * batch.height() * batch.width()];
                ImageLoader.load(it, batch.width(), batch.height(), px, 0, batch.flipped(i));
                try (NDScope s = new NDScope()) {
                    var dist = vae.encode(Tensors.of(manager, px, new Shape(1, 3, batch.height(), batch.width())));
                    d = new float[][] {Tensors.read(dist.get(0)), Tensors.read(dist.get(1))};
                }
                latentCache.put(key, d);
            }
            System.arraycopy(d[0], 0, mean, i * per, per);
            System.arraycopy(d[1], 0, logvar, i * per, per);
        }
        NDArray std = Tensors.of(manager, logvar, latentShape).mul(0.5f).exp();
        return Tensors.of(manager, mean, latentShape).add(std.mul(vaeNoise)).mul((float) folder.vae().scalingFactor());
    }

    /** Mean loss over the fixed validation set: the first val_count images, fixed noise and timesteps. */
    public double validate() {
        int n = valItems.size();
        if (n == 0) {
            return Double.NaN;
        }
        double sum = 0;
        for (int i = 0; i < n; i++) {
            ImageItem it = valItems.get(i);
            int[] size = buckets.forSize(it.width(), it.height());
            SplittableRandom rnd = new SplittableRandom(mix(cfg.seed() ^ 0x5EEDL, i));
            try (NDScope scope = new NDScope()) {
                float[] px = new float[3 * size[0] * size[1]];
                ImageLoader.load(it, size[0], size[1], px, 0);
                Shape latentShape = new Shape(1, 4, size[1] / latentFactor, size[0] / latentFactor);
                NDArray latents = vae.sampleScaled(Tensors.of(manager, px, new Shape(1, 3, size[1], size[0])), gaussian(rnd, latentShape, 0));
                int[] t = {50 + (int) ((long) i * 900 / Math.max(1, n - 1))}; // spread over the schedule
                NDArray noise = gaussian(rnd, latentShape, 0);
                NDArray noisy = latents.mul(perSample(t, true)).add(noise.mul(perSample(t, false)));
                NDArray target = scheduler.prediction() == DdpmScheduler.Prediction.EPSILON ? noise
                        : noise.mul(perSample(t, true)).sub(latents.mul(perSample(t, false)));
                NDArray pred = ComputeReplica.fp32(unet.forward(replica.input(noisy), t,
                        textEncoder.forward(tokens(List.of(it.caption())), cfg.clipSkip())));
                sum += DiffusionLoss.loss(pred, target, t, scheduler, cfg.features()).getFloat();
            }
        }
        return sum / n;
    }

    private Batch nextBatch() {
        if (batchIndex >= plan.size()) {
            epoch++;
            batchIndex = 0;
            plan = EpochPlan.plan(items, buckets, cfg.batchSize(), cfg.condDropout(), cfg.seed(), epoch);
        }
        return plan.get(batchIndex++);
    }

    /**
     * Optimizer steps between validations: validation_config's every_n_epochs in steps when given
     * (0.5: twice per epoch), else val_every_n_steps.
     */
    public int valEveryNSteps() {
        ValidationConfig v = cfg.features().validation();
        if (v == null) {
            return cfg.valEveryNSteps();
        }
        if (!v.active()) {
            return 0;
        }
        return v.everyNEpochs() >= 1 ? (int) Math.round(v.everyNEpochs()) * stepsPerEpoch
                : Math.max(1, stepsPerEpoch / (int) Math.max(1, Math.round(1 / v.everyNEpochs())));
    }

    /** True when the next step starts a new epoch (for save_every_n_epochs). */
    public boolean atEpochEnd() {
        return batchIndex >= plan.size();
    }

    private NDArray tokens(List<String> captions) {
        long[] ids = new long[captions.size() * ClipTokenizer.MAX_LENGTH];
        for (int i = 0; i < captions.size(); i++) {
            int[] e = tokenizer.encode(captions.get(i)).inputIds();
            for (int j = 0; j < e.length; j++) {
                ids[i * ClipTokenizer.MAX_LENGTH + j] = e[j];
            }
        }
        return Tensors.of(manager, ids, new Shape(captions.size(), ClipTokenizer.MAX_LENGTH));
    }

    /** sqrt(abar_t) (alpha) or sqrt(1 - abar_t) per sample, shaped [B, 1, 1, 1]. */
    private NDArray perSample(int[] t, boolean alpha) {
        float[] v = new float[t.length];
        for (int i = 0; i < t.length; i++) {
            v[i] = alpha ? scheduler.sqrtAlphaCumprod(t[i]) : scheduler.sqrtOneMinusAlphaCumprod(t[i]);
        }
        return Tensors.of(manager, v, new Shape(t.length, 1, 1, 1));
    }

    private NDArray gaussian(SplittableRandom rnd, Shape shape, float zeroFrequency) {
        return Tensors.of(manager, gaussianArray(rnd, (int) shape.get(0), (int) (shape.size() / shape.get(0)), zeroFrequency), shape);
    }

    /**
     * N(0,1) noise for {@code samples} latents of {@code per} values (4 channels), plus EveryDream's
     * zero-frequency offset: one N(0,1) x ratio per sample and channel.
     */
    private static float[] gaussianArray(SplittableRandom rnd, int samples, int per, float zeroFrequency) {
        return NoiseDraws.gaussian(rnd, samples, per, zeroFrequency);
    }

    static long mix(long seed, long index) {
        long z = seed * 0x9E3779B97F4A7C15L + index * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    // ---- checkpoints ----

    /**
     * Writes {@code dir}: model/ (diffusers, fp32 so resume is exact), optimizer/{unet,text_encoder}/
     * (the whole state: every rank's shard gathered to rank 0 over the collective) and
     * trainer_state.json (the manifest, written last). Only rank 0 writes, under a temporary name,
     * each file fsynced, then renamed: the checkpoint is complete on rank 0's node alone, so workers
     * need no shared file system, and a crash never leaves a half checkpoint under the real name.
     * Every rank must call it (the gather is a collective).
     */
    public void checkpoint(Path dir) {
        var unetState = OptimizerGather.toRoot(unetShard, collective, 0);
        var teState = OptimizerGather.toRoot(teShard, collective, 0);
        if (rank == 0) {
            CheckpointWriter.commit(dir, tmp -> {
                if (unetState != null) {
                    OptimizerStateFile.write(unetState, tmp.resolve("optimizer").resolve("unet"));
                }
                if (teState != null) {
                    OptimizerStateFile.write(teState, tmp.resolve("optimizer").resolve("text_encoder"));
                }
                saveModel(tmp.resolve("model"), DType.F32);
                byte[] state = dev.dreamcluster.config.Json.MAPPER.writerWithDefaultPrettyPrinter().writeValueAsBytes(
                        new TrainerState(step, epoch, batchIndex, microStep).toJson(cfg, ResolvedConfigJson.write(opt))
                                .put("world_size", world));
                dev.dreamcluster.io.AtomicFiles.write(tmp.resolve(TrainerState.FILE), state);
            });
            CheckpointPruner.prune(dir.toAbsolutePath(), cfg.keepLastNCheckpoints());
        }
        barrier(); // returns on every rank once the checkpoint is committed
    }

    /** Every rank waits here for every other (no-op in one process). */
    public void barrier() {
        if (collective != null && world > 1) {
            collective.barrier();
        }
    }

    /** The current weights as a diffusers folder (tokenizer and every config key copied from the source model). */
    public void saveModel(Path dir, DType dtype) {
        unetShard.syncHost(); // the GPU path: every rank's masters from the device
        teShard.syncHost();
        DiffusersFolder.writeTrained(dir, folder, dtype, (c, p) -> masterValues(c, p.name()));
        if (ema != null) { // EveryDream2 saves the EMA model as <path>_ema beside the model
            DiffusersFolder.writeTrained(dir.resolveSibling(dir.getFileName() + "_ema"), folder, dtype, (c, p) -> {
                float[] v = ema.values(c, p.name());
                return v != null ? v : masterValues(c, p.name());
            });
        }
    }

    /** fp32 master values: trainable tensors from the flat buffers (the model may hold fp16 casts), frozen ones as loaded. */
    private float[] masterValues(Component c, String name) {
        float[] v = c == Component.UNET ? unetFlat.valuesOf(name) : c == Component.TEXT_ENCODER ? teFlat.valuesOf(name) : null;
        return v != null ? v : Tensors.read(weights(c).get(name));
    }

    private ModelWeights weights(Component c) {
        return switch (c) {
            case UNET -> unetWeights;
            case TEXT_ENCODER -> teWeights;
            case VAE -> vaeWeights;
        };
    }

    /** The current weights as models to draw samples from (this thread only, between steps). */
    public dev.dreamcluster.worker.sample.SamplingModels samplingModels() {
        return new dev.dreamcluster.worker.sample.SamplingModels(manager, textEncoder, unet, vae, folder.unet(), folder.vae(), tokenizer,
                scheduler, cfg.clipSkip());
    }

    /** The training captions, in dataset order (EveryDream2's random-caption samples draw from them). */
    public List<String> captions() {
        return items.stream().map(ImageItem::caption).toList();
    }

    /** The model's configs and the current weights by component and diffusers name. */
    public DiffusersFolder model() {
        return folder;
    }

    public DiffusersFolder.Weights weightValues() {
        return (c, p) -> Tensors.read(weights(c).get(p.name()));
    }

    /** Trainable tensor names per component, for tests and logs. */
    public List<String> trainableNames(Component c) {
        return new ArrayList<>(c == Component.UNET ? unetFlat.names : teFlat.names);
    }

    @Override
    public void close() {
        overlap.close();
        unetShard.close();
        teShard.close();
        manager.close();
    }
}
