package dev.dreamcluster.worker.train;

import com.fasterxml.jackson.databind.JsonNode;
import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.config.Json;
import dev.dreamcluster.device.CollectiveKind;
import dev.dreamcluster.device.ComputeDevice;
import java.util.Locale;
import java.util.Map;

/**
 * Where and in which precision a trainer computes, from train.json ({@code device}, {@code amp},
 * {@code disable_amp}, {@code amp_dtype}, {@code collective}) and optimizer.json
 * ({@code apply_grad_scaler_step_tweaks}); flags (the overrides) beat train.json.
 *
 * @param amp null: the default, on for a GPU and off for the CPU (EveryDream2 has amp on unless
 *     {@code disable_amp}; on a CPU bf16 is slower than fp32 in libtorch, so off unless asked for)
 * @param ampDtype fp16 (the default, as EveryDream2's autocast: with a GradScaler); bf16 is refused
 *     while the JNI of DJL 0.36 has no bfloat16 (its dtype table stops at complex64, and creating or casting
 *     to one calls std::terminate: the JVM aborts, measured here)
 * @param gradientCheckpointing train.json's {@code gradient_checkpointing}: the UNet's and text
 *     encoder's blocks keep only their inputs in the forward and are recomputed in backward (less
 *     activation memory, about one more forward of compute; the gradients equal the plain ones up to
 *     float32 summation order, GradientCheckpointingTest)
 */
public record ComputeConfig(ComputeDevice device, Boolean amp, Precision ampDtype, CollectiveKind collective,
        boolean gradScalerStepTweaks, int optimizerThreads, boolean overlap, double capacity, Boolean stateOnDevice,
        boolean gradientCheckpointing) {
    /** {@link #capacity}: measure each rank's speed on the generation's first steps. */
    public static final double MEASURE = -1;

    public static final ComputeConfig CPU_FP32 = new ComputeConfig(ComputeDevice.CPU, false, Precision.FP16, CollectiveKind.AUTO, true);

    /**
     * @param optimizerThreads threads of this node's optimizer step (0: one per core); the result is
     *     the same for any count
     * @param overlap run the host ring's collectives on a communication thread (the numbers are the same)
     * @param capacity this node's relative speed for cutting each global micro-batch (0: every rank
     *     the same share; {@link #MEASURE}: measured on the generation's first steps)
     * @param stateOnDevice where the fp32 masters, gradients and optimizer state live: true on the
     *     compute device (DJL operations; the GPU default), false in host memory with the Java kernels
     *     (the CPU default: bitsandbytes-exact 8-bit, fastest on a CPU); null: the device's default
     * @param gradientCheckpointing recompute each block in backward instead of keeping its activations
     */
    public ComputeConfig {
        if (ampDtype == Precision.FP32) {
            throw ConfigError.invalid("amp_dtype", "\"fp32\"", "bf16 or fp16; set amp to false for fp32");
        }
        if (optimizerThreads < 0) {
            throw ConfigError.invalid("--optimizer_threads", Integer.toString(optimizerThreads), "a thread count >= 1, or 0 for one per core");
        }
        if (!(capacity >= 0 || capacity == MEASURE) || Double.isInfinite(capacity)) {
            throw ConfigError.invalid("--capacity", Double.toString(capacity), "a relative speed > 0, or auto");
        }
    }

    /** This node's defaults: one optimizer thread per core, the communication thread on. */
    public ComputeConfig(ComputeDevice device, Boolean amp, Precision ampDtype, CollectiveKind collective, boolean gradScalerStepTweaks) {
        this(device, amp, ampDtype, collective, gradScalerStepTweaks, 0, true, 0, null, false);
    }

    /** The same with this node's thread and overlap settings (flags of the command that starts it). */
    public ComputeConfig withNodeSettings(int threads, boolean overlapOn) {
        return new ComputeConfig(device, amp, ampDtype, collective, gradScalerStepTweaks, threads, overlapOn, capacity, stateOnDevice, gradientCheckpointing);
    }

    /** The same with this node's --capacity (0: an even cut; MEASURE: measured). */
    public ComputeConfig withCapacity(double c) {
        return new ComputeConfig(device, amp, ampDtype, collective, gradScalerStepTweaks, optimizerThreads, overlap, c, stateOnDevice, gradientCheckpointing);
    }

    /** The same with --state_on (true: device, false: host, null: the device's default). */
    public ComputeConfig withStateOnDevice(Boolean onDevice) {
        return new ComputeConfig(device, amp, ampDtype, collective, gradScalerStepTweaks, optimizerThreads, overlap, capacity, onDevice, gradientCheckpointing);
    }

    /** The optimizer's thread count on this machine. */
    public int optimizerThreadCount() {
        return optimizerThreads > 0 ? optimizerThreads : Runtime.getRuntime().availableProcessors();
    }

    /** The precision on a resolved device: fp32 unless amp (or its default) is on. */
    public Precision precision(ComputeDevice resolved) {
        boolean on = amp != null ? amp : resolved.isGpu();
        if (!on) {
            return Precision.FP32;
        }
        if (ampDtype == Precision.BF16) {
            throw ConfigError.invalid("amp_dtype", "\"bf16\"", "fp16: DJL 0.36's libtorch JNI cannot create bfloat16 tensors "
                    + "(GetScalarTypeFromDType stops at complex64 and aborts the JVM); set amp to false for fp32");
        }
        return ampDtype;
    }

    public ComputeConfig withDevice(ComputeDevice d) {
        return new ComputeConfig(d, amp, ampDtype, collective, gradScalerStepTweaks, optimizerThreads, overlap, capacity, stateOnDevice, gradientCheckpointing);
    }

    /**
     * From already-read config files (errors name train.json and optimizer.json).
     *
     * @param overrides flag values by train.json key ("device", "amp", "collective"); null: not given
     */
    public static ComputeConfig of(dev.dreamcluster.config.ConfigFiles files, Map<String, Object> overrides) {
        JsonNode tweaks = files.optimizer() == null ? null : files.optimizer().get("apply_grad_scaler_step_tweaks");
        if (tweaks != null && !tweaks.isNull() && !tweaks.isBoolean()) {
            throw ConfigError.invalid(files.optimizerPath() + " at apply_grad_scaler_step_tweaks", tweaks.toString(), "true or false");
        }
        return read(files.train(), overrides, files.trainPath().toString(), tweaks == null || tweaks.isNull() || tweaks.booleanValue());
    }

    /**
     * From the compute keys a run plan carries ({@code RunConfig.compute}: train.json's as written,
     * and optimizer.json's apply_grad_scaler_step_tweaks), with this worker's flags.
     */
    public static ComputeConfig fromRun(JsonNode compute, Map<String, Object> overrides) {
        JsonNode tweaks = compute.get("apply_grad_scaler_step_tweaks");
        return read(compute, overrides, "run plan compute_config", tweaks == null || !tweaks.isBoolean() || tweaks.booleanValue());
    }

    private static ComputeConfig read(JsonNode j, Map<String, Object> overrides, String label, boolean stepTweaks) {
        ComputeDevice device = ComputeDevice.parse(text(j, overrides, "device", "cpu", label), where(overrides, "device", label));
        Boolean amp = bool(j, overrides, "amp", label);
        Boolean disable = bool(j, overrides, "disable_amp", label);
        if (amp == null && disable != null) {
            amp = !disable;
        }
        String dt = text(j, overrides, "amp_dtype", "fp16", label).toLowerCase(Locale.ROOT);
        Precision dtype = switch (dt) {
            case "bf16", "bfloat16" -> Precision.BF16;
            case "fp16", "float16" -> Precision.FP16;
            default -> throw ConfigError.invalid(where(overrides, "amp_dtype", label), "\"" + dt + "\"", "bf16 or fp16");
        };
        CollectiveKind collective = CollectiveKind.parse(text(j, overrides, "collective", "auto", label),
                where(overrides, "collective", label));
        Boolean checkpointing = bool(j, overrides, "gradient_checkpointing", label);
        return new ComputeConfig(device, amp, dtype, collective, stepTweaks, 0, true, 0, null,
                checkpointing != null && checkpointing);
    }

    private static String where(Map<String, Object> o, String key, String label) {
        return o.get(key) != null ? "--" + key : label + " at " + key;
    }

    private static String text(JsonNode j, Map<String, Object> o, String key, String def, String label) {
        Object v = o.get(key);
        if (v != null) {
            return v.toString();
        }
        String t = dev.dreamcluster.config.JsonFields.optionalText(j, key, label);
        return t == null ? def : t;
    }

    private static Boolean bool(JsonNode j, Map<String, Object> o, String key, String label) {
        Object v = o.get(key);
        if (v instanceof Boolean b) {
            return b;
        }
        return dev.dreamcluster.config.JsonFields.optionalBool(j, key, label);
    }
}
