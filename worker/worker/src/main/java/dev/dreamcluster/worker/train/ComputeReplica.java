package dev.dreamcluster.worker.train;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.device.ComputeDevice;
import dev.dreamcluster.device.Libtorch;
import dev.dreamcluster.worker.model.ModelWeights;
import java.util.HashMap;
import java.util.Map;
import java.util.function.Predicate;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The trainer's compute side: the DJL device the model, the step and the loss run on, and the
 * precision. The fp32 master weights always live on the host (the flat buffers the Java optimizers
 * update, ZeRO-Offload style); the model computes on a replica of them:
 *
 * <pre>
 *   cpu + fp32       the masters themselves (no copy: the path every earlier release ran)
 *   cpu + fp16       fp16 casts of the masters (frozen tensors too: one dtype per module)
 *   gpu:N + any      casts on CUDA device N (the VAE stays fp32: frozen, and its latents feed the loss)
 * </pre>
 *
 * The replica is refreshed from the flat masters after every update ({@link FlatParams#writeBack});
 * inputs are cast to the compute dtype at the model's door and the prediction back to fp32 for the
 * loss, as autocast does for mse_loss.
 */
public final class ComputeReplica {
    private static final Logger LOG = LoggerFactory.getLogger(ComputeReplica.class);
    public final ComputeDevice device;
    public final Device djlDevice;
    public final Precision precision;
    public final GradScaler scaler;
    /** True when the training state lives on the compute device (a device store), false on the host. */
    public final boolean stateOnDevice;
    /** train.json's gradient_checkpointing: the models' blocks are recomputed in backward. */
    public final boolean gradientCheckpointing;

    private ComputeReplica(ComputeDevice device, Precision precision, boolean stepTweaks, boolean stateOnDevice,
            boolean gradientCheckpointing) {
        this.stateOnDevice = stateOnDevice;
        this.gradientCheckpointing = gradientCheckpointing;
        this.device = device;
        this.djlDevice = device.isGpu() ? Device.gpu(device.gpuIndex()) : Device.cpu();
        this.precision = precision;
        this.scaler = precision.scalesLoss() ? new GradScaler(stepTweaks) : null;
    }

    /**
     * Loads the engine for {@code cfg}'s device. A GPU device needs the CUDA libtorch named by
     * PYTORCH_LIBRARY_PATH (variable or system property, set by the launcher from --libtorch).
     *
     * @throws ConfigError when the device does not exist here or needs a libtorch that is not there
     */
    public static ComputeReplica of(ComputeConfig cfg) {
        ComputeDevice d = cfg.device();
        if (d.isGpu()) {
            Libtorch.forGpu(null, pytorchSettings(), d.toString());
        }
        int gpus = Engine.getEngine("PyTorch").getGpuCount();
        ComputeDevice r = d.resolve(gpus);
        if (r.isGpu() && r.gpuIndex() >= gpus) {
            throw ConfigError.invalid("--device", r.toString(), "cpu" + (gpus > 0 ? " or gpu:0 to gpu:" + (gpus - 1) : "")
                    + ": the libtorch loaded from " + pytorchSettings().getOrDefault("PYTORCH_LIBRARY_PATH", "the distribution")
                    + " sees " + gpus + " CUDA device(s)");
        }
        if (d.auto()) {
            LOG.info("device auto: {}", r);
        }
        return new ComputeReplica(r, cfg.precision(r), cfg.gradScalerStepTweaks(),
                cfg.stateOnDevice() != null ? cfg.stateOnDevice() : r.isGpu(), cfg.gradientCheckpointing());
    }

    /**
     * PYTORCH_* as DJL reads them: the environment variable, else the system property of the same name
     * ({@code Utils.getEnvOrSystemProperty} at v0.36.0: the environment wins).
     */
    static Map<String, String> pytorchSettings() {
        Map<String, String> m = new HashMap<>();
        Map<String, String> env = System.getenv();
        for (String k : Libtorch.KEYS) {
            String v = Libtorch.envThenProperty(k, env);
            if (v != null) {
                m.put(k, v);
            }
        }
        return m;
    }

    /** True when the model computes on the masters themselves (cpu, fp32). */
    public boolean sharesMasters() {
        return !device.isGpu() && precision == Precision.FP32;
    }

    /**
     * The replica of {@code masters} the model computes with: the masters themselves when shared,
     * else casts on the device (to the compute dtype when {@code cast}, else fp32) with gradients on
     * the {@code trainable} tensors.
     */
    public ModelWeights place(ModelWeights masters, NDManager parent, Predicate<String> trainable, boolean cast) {
        DataType t = cast ? precision.dataType() : DataType.FLOAT32;
        if (sharesMasters() || (!device.isGpu() && t == DataType.FLOAT32)) {
            return masters;
        }
        // with the state on the device, the trainable tensors are the device store's fp32 views: not copied here
        return masters.replica(parent, djlDevice, t, trainable, stateOnDevice);
    }

    /** The dtype the models compute in. */
    public DataType computeDtype() {
        return precision.dataType();
    }

    /** {@code x} in the compute dtype (a model input). */
    public NDArray input(NDArray x) {
        return x.getDataType() == precision.dataType() ? x : x.toType(precision.dataType(), false);
    }

    /**
     * {@code x} in fp32, inside the autograd graph (the prediction, before the loss). DJL's toType runs
     * under a NoGradGuard (it would cut the graph), so the cast is type promotion instead: x + a
     * one-element fp32 zero (a 1-d tensor promotes; a 0-d one would not).
     */
    public static NDArray fp32(NDArray x) {
        return x.getDataType() == DataType.FLOAT32 ? x
                : x.add(x.getManager().zeros(new ai.djl.ndarray.types.Shape(1), DataType.FLOAT32, x.getDevice()));
    }

    /** The factor the gradients carry from loss scaling (1 without a scaler). */
    public double lossScale() {
        return scaler == null ? 1 : scaler.scale();
    }

    /** After the step's gradients were checked (fp16): backs off on inf/NaN, grows after a run of finite steps. */
    public void afterStep(boolean finite, int step) {
        if (scaler != null) {
            scaler.update(!finite, step);
        }
    }

    @Override
    public String toString() {
        return device + " " + precision + (stateOnDevice ? ", training state on the device" : "");
    }
}
