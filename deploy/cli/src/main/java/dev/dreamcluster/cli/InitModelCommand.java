package dev.dreamcluster.cli;

import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.config.Json;
import dev.dreamcluster.model.DiffusersFolder;
import dev.dreamcluster.model.Presets;
import dev.dreamcluster.safetensors.DType;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code dreamcluster init-model}: a randomly initialised diffusers folder of a preset architecture. */
@Command(name = "init-model", mixinStandardHelpOptions = true,
        description = "Write a randomly initialised diffusers model folder (tiny: a few MB for tests and demos).")
final class InitModelCommand implements Callable<Integer> {
    @Option(names = "--preset", required = true, paramLabel = "P", description = "tiny, medium, sd15 or sd21")
    String preset;

    @Option(names = "--out", required = true, paramLabel = "DIR")
    Path out;

    @Option(names = "--seed", paramLabel = "N", defaultValue = "0")
    long seed;

    @Option(names = "--dtype", paramLabel = "T", description = "fp32, fp16 or bf16 (default: fp32 for tiny, fp16 otherwise)")
    String dtype;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    static Presets preset(String name) {
        for (Presets p : Presets.values()) {
            if (p.key().equalsIgnoreCase(name)) {
                return p;
            }
        }
        throw ConfigError.invalid("--preset", Json.quote(name), "one of tiny, medium, sd15, sd21");
    }

    static DType dtype(String s, String flag) {
        return switch (s.toLowerCase(Locale.ROOT)) {
            case "fp32", "f32", "float32" -> DType.F32;
            case "fp16", "f16", "float16" -> DType.F16;
            case "bf16", "bfloat16" -> DType.BF16;
            default -> throw ConfigError.invalid(flag, Json.quote(s), "fp32, fp16 or bf16");
        };
    }

    @Override
    public Integer call() {
        Presets p = preset(preset);
        DType t = dtype != null ? dtype(dtype, "--dtype") : p == Presets.TINY ? DType.F32 : DType.F16;
        DiffusersFolder.writeRandom(out, p, seed, t);
        spec.commandLine().getOut().println("wrote " + p.key() + " (" + t.name().toLowerCase(Locale.ROOT) + ", seed " + seed + ") to "
                + out + "  " + Arrays.toString(new String[] {"unet", "text_encoder", "vae", "scheduler", "tokenizer"}));
        spec.commandLine().getOut().flush();
        return 0;
    }
}
