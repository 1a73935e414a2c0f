package dev.dreamcluster.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.config.ConfigResolver;
import dev.dreamcluster.config.Json;
import dev.dreamcluster.config.ResolvedConfigJson;
import dev.dreamcluster.config.ResolvedTrainingConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code dreamcluster resolve}: shows exactly what will be trained, with what, and why. */
@Command(name = "resolve", mixinStandardHelpOptions = true,
        description = "Resolve train.json + optimizer.json + flags and show every value with its source.")
final class ResolveCommand implements Callable<Integer> {
    /** CLIP ViT-L/14, the SD1.x text encoder. */
    static final int DEFAULT_TE_LAYERS = 12;

    @Option(names = "--config", paramLabel = "train.json", description = "EveryDream2 train.json")
    Path config;

    @Mixin
    OptimizerFlags flags;

    @ArgGroup(exclusive = true)
    LayerSource layers;

    @Option(names = "--json", description = "print the resolved config as JSON (nothing else on stdout)")
    boolean json;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    static final class LayerSource {
        @Option(names = "--text_encoder_layers", paramLabel = "N", description = "text encoder layers (default 12)")
        Integer count;

        @Option(names = "--model", paramLabel = "DIR", description = "diffusers folder: reads text_encoder/config.json")
        Path model;
    }

    @Override
    public Integer call() {
        int teLayers = layers == null ? DEFAULT_TE_LAYERS
                : layers.count != null ? layers.count : readLayerCount(layers.model);
        if (config != null && !Files.isRegularFile(config)) {
            throw new ConfigError("--config: " + Json.quote(config.toString()) + " does not exist or is not a file");
        }
        ResolvedTrainingConfig resolved = ConfigResolver.resolve(dev.dreamcluster.config.ConfigFiles.read(config,
                flags.toFlags().optimizerConfig()), flags.toFlags(), teLayers); // the same files-then-resolver path as train
        var out = spec.commandLine().getOut();
        out.print(json ? ResolvedConfigJson.write(resolved) + "\n" : ResolvedConfigJson.table(resolved));
        out.flush();
        return 0;
    }

    /** {@code num_hidden_layers} of a diffusers folder's text encoder. */
    static int readLayerCount(Path modelDir) {
        Path cfg = modelDir.resolve("text_encoder").resolve("config.json");
        if (!Files.isRegularFile(cfg)) {
            throw new ConfigError("--model: " + Json.quote(modelDir.toString())
                    + " is not a diffusers folder (no text_encoder/config.json)");
        }
        JsonNode n = Json.readObject(cfg, cfg.toString()).get("num_hidden_layers");
        if (n == null || !n.canConvertToExactIntegral() || n.asInt() < 1) {
            throw ConfigError.invalid(cfg + " at num_hidden_layers", String.valueOf(n), "a layer count >= 1");
        }
        return n.asInt();
    }
}
