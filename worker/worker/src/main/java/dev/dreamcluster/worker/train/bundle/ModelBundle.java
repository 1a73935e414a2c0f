package dev.dreamcluster.worker.train.bundle;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.pytorch.jni.JniUtils;
import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.config.ResolvedTrainingConfig;
import dev.dreamcluster.diffusion.DdpmScheduler;
import dev.dreamcluster.freeze.Component;
import dev.dreamcluster.freeze.FreezePlan;
import dev.dreamcluster.model.DiffusersFolder;
import dev.dreamcluster.model.TensorSource;
import dev.dreamcluster.tokenizer.ClipTokenizer;
import dev.dreamcluster.worker.check.StartupCheck;
import dev.dreamcluster.worker.model.ClipTextModel;
import dev.dreamcluster.worker.model.ModelWeights;
import dev.dreamcluster.worker.model.Ops;
import dev.dreamcluster.worker.model.Tensors;
import dev.dreamcluster.worker.model.UNetModel;
import dev.dreamcluster.worker.model.VaeModel;
import dev.dreamcluster.worker.sample.SamplingModels;
import dev.dreamcluster.worker.train.ComputeReplica;
import java.nio.file.Path;
import java.util.Collection;
import java.util.List;
import java.util.function.Predicate;

/**
 * Everything a node computes with. Memory: the fp32 masters of all three components on the host, and
 * on a GPU or with fp16 a second copy of the text encoder and UNet in the compute dtype (the VAE stays
 * fp32: frozen, and its latents feed the loss). On a CPU in fp32 the models compute on the masters.
 * One thread (the compute thread) uses it; {@link #close} frees every tensor.
 */
public final class ModelBundle implements AutoCloseable {
    public final DiffusersFolder folder;
    public final ComputeReplica replica;
    public final FreezePlan freeze;
    /** fp32 masters: what the flat parameters start from and what frozen tensors are saved from. */
    public final ModelWeights teMasters;
    public final ModelWeights unetMasters;
    public final ModelWeights vae;
    /** The tensors the models compute with (the masters themselves on a CPU in fp32). */
    public final ModelWeights teCompute;
    public final ModelWeights unetCompute;
    /** How the models compute: plain, or with their blocks recomputed in backward (gradient_checkpointing). */
    public final Ops ops;
    public final ClipTextModel textEncoder;
    public final UNetModel unet;
    public final VaeModel vaeModel;
    public final ClipTokenizer tokenizer;
    public final DdpmScheduler scheduler;
    /** Pixels per latent cell (8 for SD). */
    public final int latentFactor;
    private final NDManager manager;

    private ModelBundle(DiffusersFolder folder, TensorSource source, ResolvedTrainingConfig opt, ComputeReplica replica) {
        this.folder = folder;
        this.replica = replica;
        this.ops = new Ops(replica.gradientCheckpointing);
        JniUtils.setGradMode(false); // autograd records only inside the step's GradientCollector
        this.manager = NDManager.newBaseManager(replica.djlDevice);
        if (folder.textEncoder().numHiddenLayers() != opt.textEncoderFreezing().numLayers()) {
            throw new ConfigError(folder.dir().resolve("text_encoder/config.json") + " at num_hidden_layers: "
                    + folder.textEncoder().numHiddenLayers() + " is not allowed (the optimizer config was resolved for "
                    + opt.textEncoderFreezing().numLayers() + " text encoder layers)");
        }
        this.freeze = FreezePlan.of(opt);
        Predicate<String> teTrain = n -> freeze.isTrainable(Component.TEXT_ENCODER, n);
        Predicate<String> unetTrain = n -> freeze.isTrainable(Component.UNET, n);
        boolean shared = replica.sharesMasters(); // else the host masters carry no gradients; the replica does
        this.teMasters = ModelWeights.load(manager, folder, source, Component.TEXT_ENCODER, Device.cpu(), shared ? teTrain : n -> false);
        this.unetMasters = ModelWeights.load(manager, folder, source, Component.UNET, Device.cpu(), shared ? unetTrain : n -> false);
        this.vae = ModelWeights.load(manager, folder, source, Component.VAE, Device.cpu(), n -> false);
        this.teCompute = replica.place(teMasters, manager, teTrain, true);
        this.unetCompute = replica.place(unetMasters, manager, unetTrain, true);
        this.textEncoder = new ClipTextModel(folder.textEncoder(), teCompute, ops);
        this.unet = new UNetModel(folder.unet(), unetCompute, ops);
        this.vaeModel = new VaeModel(folder.vae(), replica.place(vae, manager, n -> false, false), ops);
        this.tokenizer = ClipTokenizer.load(folder.dir().resolve("tokenizer"));
        this.scheduler = folder.scheduler();
        this.latentFactor = 1 << (folder.vae().blockOutChannels().size() - 1);
    }

    /**
     * Loads {@code modelPath} (a diffusers folder or a single LDM .safetensors) for {@code opt}'s
     * freezing plan onto {@code replica}'s device.
     */
    public static ModelBundle load(Path modelPath, DiffusersFolder folder, ResolvedTrainingConfig opt, ComputeReplica replica) {
        return new ModelBundle(folder, TensorSource.open(modelPath, folder), opt, replica);
    }

    /** Where the step's tensors are created (the compute device). */
    public NDManager manager() {
        return manager;
    }

    /**
     * The startup check at the shapes training will run: the text encoder and the UNet at {@code
     * batch} images per micro-batch and every latent size in {@code latentSizes}.
     */
    public void checkOps(int batch, Collection<List<Integer>> latentSizes, int clipSkip) {
        StartupCheck.run(ops, manager, replica.computeDtype(), batch, latentSizes,
                (latents, ids) -> unet.forward(replica.input(latents), new int[(int) latents.getShape().get(0)],
                        textEncoder.forward(ids, clipSkip)));
    }

    /** The fp32 master weights of {@code c} (frozen tensors as loaded; trainable ones as they started). */
    public ModelWeights masters(Component c) {
        return switch (c) {
            case UNET -> unetMasters;
            case TEXT_ENCODER -> teMasters;
            case VAE -> vae;
        };
    }

    public ModelWeights compute(Component c) {
        return c == Component.UNET ? unetCompute : c == Component.TEXT_ENCODER ? teCompute : vae;
    }

    /** int64 token ids [B, 77] of {@code captions}, padded as the tokenizer pads. */
    public NDArray tokens(List<String> captions) {
        long[] ids = new long[captions.size() * ClipTokenizer.MAX_LENGTH];
        for (int i = 0; i < captions.size(); i++) {
            int[] e = tokenizer.encode(captions.get(i)).inputIds();
            for (int j = 0; j < e.length; j++) {
                ids[i * ClipTokenizer.MAX_LENGTH + j] = e[j];
            }
        }
        return Tensors.of(manager, ids, new ai.djl.ndarray.types.Shape(captions.size(), ClipTokenizer.MAX_LENGTH));
    }

    /** The current weights as models to draw samples from (the compute thread only, between steps). */
    public SamplingModels samplingModels(int clipSkip) {
        return new SamplingModels(manager, textEncoder, unet, vaeModel, folder.unet(), folder.vae(), tokenizer, scheduler, clipSkip);
    }

    @Override
    public void close() {
        manager.close();
    }
}
