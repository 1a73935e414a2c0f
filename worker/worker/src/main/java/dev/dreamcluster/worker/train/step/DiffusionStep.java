package dev.dreamcluster.worker.train.step;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import dev.dreamcluster.config.TrainConfig;
import dev.dreamcluster.diffusion.DdpmScheduler;
import dev.dreamcluster.tokenizer.ClipTokenizer;
import dev.dreamcluster.worker.data.Batch;
import dev.dreamcluster.worker.data.ImageItem;
import dev.dreamcluster.worker.data.ImageLoader;
import dev.dreamcluster.worker.model.Recompute;
import dev.dreamcluster.worker.model.Tensors;
import dev.dreamcluster.worker.train.ComputeReplica;
import dev.dreamcluster.worker.train.bundle.ModelBundle;
import dev.dreamcluster.worker.train.data.BatchSplit;
import dev.dreamcluster.worker.train.data.DataCursor;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * The diffusion math of one micro-batch, EveryDream2's: VAE latents x scaling factor, noise (+ offset
 * noise, pyramid noise), timesteps, {@code add_noise}, the text encoder (caption dropout already in the
 * batch, clip_skip, embedding perturbation), the UNet, the loss against the epsilon or v target, and
 * backward, which adds into every trainable tensor's .grad. Every draw derives from (seed,
 * micro-step) for the whole global batch, then this rank takes its slice, so N ranks compute what one
 * would and a resumed run continues bit for bit. Also the fixed-noise validation loss.
 */
public final class DiffusionStep {
    private final TrainConfig cfg;
    private final ModelBundle m;
    private final int rank;
    private final int world;
    /** item path + bucket size to the unscaled latent mean and log-variance, when latent_cache is on. */
    private final Map<String, float[][]> latentCache = new HashMap<>();
    private InputRecorder inputRecorder;
    /** How each global micro-batch is cut between the ranks (even unless capacities say otherwise). */
    private BatchSplit split;

    /**
     * Sees every micro-batch's model inputs as this rank computes them: the scaled latents, the noise
     * (offset included), the timesteps and the token ids after caption dropout. For comparing the
     * training with an independent implementation fed the same inputs; costs one copy of each.
     */
    public interface InputRecorder {
        void record(long microStep, float[] latents, float[] noise, int[] timesteps, long[] tokenIds, long[] latentShape);
    }

    public DiffusionStep(TrainConfig cfg, ModelBundle bundle, int rank, int world, BatchSplit split) {
        this.cfg = cfg;
        this.m = bundle;
        this.rank = rank;
        this.world = world;
        this.split = split;
    }

    public BatchSplit split() {
        return split;
    }

    /** From the next micro-batch on (a measured split replacing the even one; the same step on every rank). */
    public void useSplit(BatchSplit s) {
        this.split = s;
    }

    public void recordInputs(InputRecorder recorder) {
        this.inputRecorder = recorder;
    }

    /** The sum of the micro-batch losses of one optimizer step (grad_accum micro-batches), gradients accumulated. */
    public double accumulate(DataCursor data) {
        double loss = 0;
        for (int micro = 0; micro < cfg.gradAccum(); micro++) {
            loss += microBatch(data.next(), data.takeMicroStep());
        }
        return loss;
    }

    /** The loss of this rank's slice of one global micro-batch; backward adds its gradients. */
    double microBatch(Batch global, long index) {
        SplittableRandom rnd = new SplittableRandom(mix(cfg.seed(), index));
        int gb = global.items().size();
        int lo = split.lo(rank);
        int hi = split.hi(rank);
        int h = global.height() / m.latentFactor;
        int w = global.width() / m.latentFactor;
        int per = 4 * h * w;
        NoiseDraws draws = NoiseDraws.draw(rnd, gb, h, w, cfg.features(), (float) cfg.zeroFrequencyNoiseRatio(),
                m.scheduler.numTrainTimesteps(), ClipTokenizer.MAX_LENGTH, m.folder.textEncoder().hiddenSize());
        Batch batch = global.slice(lo, hi);
        Shape latentShape = new Shape(hi - lo, 4, h, w);
        int[] t = Arrays.copyOfRange(draws.timesteps(), lo, hi);
        NDManager nd = m.manager();
        try (NDScope scope = new NDScope()) {
            NDArray vaeNoise = Tensors.of(nd, Arrays.copyOfRange(draws.vaeNoise(), lo * per, hi * per), latentShape);
            NDArray latents = cfg.latentCache() ? cachedLatents(batch, latentShape, vaeNoise) : encode(batch, vaeNoise);
            NDArray noise = Tensors.of(nd, Arrays.copyOfRange(draws.noise(), lo * per, hi * per), latentShape);
            NDArray noisy = latents.mul(perSample(t, true)).add(noise.mul(perSample(t, false)));
            NDArray target = m.scheduler.prediction() == DdpmScheduler.Prediction.EPSILON ? noise
                    : noise.mul(perSample(t, true)).sub(latents.mul(perSample(t, false)));
            NDArray ids = m.tokens(batch.captions());
            if (inputRecorder != null) {
                inputRecorder.record(index, Tensors.read(latents), Tensors.read(noise), t, ids.toLongArray(), latentShape.getShape());
            }
            // gradient_checkpointing: rc records each block's inputs and recomputes the block in backward
            try (GradientCollector gc = Engine.getInstance().newGradientCollector(); Recompute rc = m.ops.recompute()) {
                NDArray states = m.textEncoder.forward(ids, cfg.clipSkip(), rc);
                if (draws.perturbation() != null) {
                    int span = ClipTokenizer.MAX_LENGTH * m.folder.textEncoder().hiddenSize();
                    states = states.add(Tensors.of(nd, Arrays.copyOfRange(draws.perturbation(), lo * span, hi * span), states.getShape()));
                }
                NDArray pred = ComputeReplica.fp32(m.unet.forward(m.replica.input(noisy), t, states, rc));
                NDArray loss = DiffusionLoss.loss(pred, target, t, m.scheduler, cfg.features(), lossScales(batch));
                if (!split.even()) { // this rank's share of the global mean: counts[rank] * world / batch
                    loss = loss.mul(Tensors.of(nd, new float[] {split.weight(rank)}, new Shape()));
                }
                rc.backward(gc, m.replica.scaler == null ? loss : loss.mul(Tensors.of(nd, new float[] {(float) m.replica.lossScale()}, new Shape())));
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
        return m.vaeModel.sampleScaled(Tensors.of(m.manager(), px, new Shape(b, 3, batch.height(), batch.width())), vaeNoise);
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
                    var dist = m.vaeModel.encode(Tensors.of(m.manager(), px, new Shape(1, 3, batch.height(), batch.width())));
                    d = new float[][] {Tensors.read(dist.get(0)), Tensors.read(dist.get(1))};
                }
                latentCache.put(key, d);
            }
            System.arraycopy(d[0], 0, mean, i * per, per);
            System.arraycopy(d[1], 0, logvar, i * per, per);
        }
        NDArray std = Tensors.of(m.manager(), logvar, latentShape).mul(0.5f).exp();
        return Tensors.of(m.manager(), mean, latentShape).add(std.mul(vaeNoise)).mul((float) m.folder.vae().scalingFactor());
    }

    /**
     * Mean loss over the fixed validation set (the validation images, fixed noise and timesteps),
     * computed over every rank: rank r takes images r, r + world, ..., and one all-reduce sums the
     * partial sums, so no rank idles while another validates. Each image's loss does not depend on
     * which rank computes it; the sum travels as float32 (relative rounding below 1e-7).
     */
    public double validate(List<ImageItem> valItems, dev.dreamcluster.worker.data.AspectBuckets buckets,
            dev.dreamcluster.worker.train.grad.GradSync sync) {
        int n = valItems.size();
        if (n == 0) {
            return Double.NaN;
        }
        double sum = 0;
        for (int i = rank; i < n; i += world) {
            ImageItem it = valItems.get(i);
            int[] size = buckets.forSize(it.width(), it.height());
            SplittableRandom rnd = new SplittableRandom(mix(cfg.seed() ^ 0x5EEDL, i));
            try (NDScope scope = new NDScope()) {
                float[] px = new float[3 * size[0] * size[1]];
                ImageLoader.load(it, size[0], size[1], px, 0);
                Shape latentShape = new Shape(1, 4, size[1] / m.latentFactor, size[0] / m.latentFactor);
                NDArray latents = m.vaeModel.sampleScaled(Tensors.of(m.manager(), px, new Shape(1, 3, size[1], size[0])),
                        gaussian(rnd, latentShape));
                int[] t = {50 + (int) ((long) i * 900 / Math.max(1, n - 1))}; // spread over the schedule
                NDArray noise = gaussian(rnd, latentShape);
                NDArray noisy = latents.mul(perSample(t, true)).add(noise.mul(perSample(t, false)));
                NDArray target = m.scheduler.prediction() == DdpmScheduler.Prediction.EPSILON ? noise
                        : noise.mul(perSample(t, true)).sub(latents.mul(perSample(t, false)));
                NDArray pred = ComputeReplica.fp32(m.unet.forward(m.replica.input(noisy), t,
                        m.textEncoder.forward(m.tokens(List.of(it.caption())), cfg.clipSkip())));
                sum += DiffusionLoss.loss(pred, target, t, m.scheduler, cfg.features()).getFloat();
            }
        }
        double[] total = {sum};
        sync.allReduce(total);
        return total[0] / n;
    }

    /** sqrt(abar_t) (alpha) or sqrt(1 - abar_t) per sample, shaped [B, 1, 1, 1]. */
    private NDArray perSample(int[] t, boolean alpha) {
        float[] v = new float[t.length];
        for (int i = 0; i < t.length; i++) {
            v[i] = alpha ? m.scheduler.sqrtAlphaCumprod(t[i]) : m.scheduler.sqrtOneMinusAlphaCumprod(t[i]);
        }
        return Tensors.of(m.manager(), v, new Shape(t.length, 1, 1, 1));
    }

    private NDArray gaussian(SplittableRandom rnd, Shape shape) {
        return Tensors.of(m.manager(), NoiseDraws.gaussian(rnd, (int) shape.get(0), (int) (shape.size() / shape.get(0)), 0), shape);
    }

    /** The seed of micro-step {@code index}'s draws: a SplitMix64-style mix of (seed, index). */
    static long mix(long seed, long index) {
        long z = seed * 0x9E3779B97F4A7C15L + index * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
