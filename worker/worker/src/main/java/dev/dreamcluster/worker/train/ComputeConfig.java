package dev.dreamcluster.worker.train;

import com.fasterxml.jackson.databind.JsonNode;
import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.config.Json;
import dev.dreamcluster.device.CollectiveKind;
import dev.dreamcluster.device.ComputeDevice;
import java.nio.file.Files;
import java.nio.file.Path;
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
 */
public record ComputeConfig(ComputeDevice device, Boolean amp, Precision ampDtype, CollectiveKind collective,
        boolean gradScalerStepTweaks) {
    public static final ComputeConfig CPU_FP32 = new ComputeConfig(ComputeDevice.CPU, false, Precision.FP16, CollectiveKind.AUTO, true);

    public ComputeConfig {
        if (ampDtype == Precision.FP32) {
            throw ConfigError.invalid("amp_dtype", "\"fp32\"", "bf16 or fp16; set amp to false for fp32");
        }
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
        return new ComputeConfig(d, amp, ampDtype, collective, gradScalerStepTweaks);
    }

    /** @param overrides flag values by train.json key ("device", "amp", "collective"); null: not given */
    public static ComputeConfig load(Path trainJson, Map<String, Object> overrides) {
        JsonNode j = Json.readObject(trainJson, trainJson.toString());
        return read(j, overrides, trainJson.toString(), stepTweaks(trainJson, j));
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
        return new ComputeConfig(device, amp, dtype, collective, stepTweaks);
    }

    /** EveryDream2's optimizer.json key (default true); the file is relative to train.json. */
    private static boolean stepTweaks(Path trainJson, JsonNode train) {
        JsonNode oc = train.get("optimizer_config");
        if (oc == null || !oc.isTextual()) {
            return true;
        }
        Path opt = trainJson.toAbsolutePath().getParent().resolve(oc.asText());
        if (!Files.isRegularFile(opt)) {
            return true; // the optimizer resolver reports a missing file
        }
        JsonNode n = Json.readObject(opt, opt.toString()).get("apply_grad_scaler_step_tweaks");
        if (n == null || n.isNull()) {
            return true;
        }
        if (!n.isBoolean()) {
            throw ConfigError.invalid(opt + " at apply_grad_scaler_step_tweaks", n.toString(), "true or false");
        }
        return n.booleanValue();
    }

    private static String where(Map<String, Object> o, String key, String label) {
        return o.get(key) != null ? "--" + key : label + " at " + key;
    }

    private static String text(JsonNode j, Map<String, Object> o, String key, String def, String label) {
        Object v = o.get(key);
        if (v != null) {
            return v.toString();
        }
        JsonNode n = j.get(key);
        if (n == null || n.isNull()) {
            return def;
        }
        if (!n.isTextual()) {
            throw ConfigError.invalid(label + " at " + key, n.toString(), "a string");
        }
        return n.asText();
    }

    private static Boolean bool(JsonNode j, Map<String, Object> o, String key, String label) {
        Object v = o.get(key);
        if (v instanceof Boolean b) {
            return b;
        }
        JsonNode n = j.get(key);
        if (n == null || n.isNull()) {
            return null;
        }
        if (!n.isBoolean()) {
            throw ConfigError.invalid(label + " at " + key, n.toString(), "true or false");
        }
        return n.booleanValue();
    }
}
