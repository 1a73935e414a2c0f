package dev.dreamcluster.worker.train.ckpt;

import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.config.Json;
import dev.dreamcluster.worker.train.grad.ParamGroup;
import dev.dreamcluster.model.DiffusersFolder;
import dev.dreamcluster.optim.OptimizerState;
import dev.dreamcluster.optim.OptimizerStateFile;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * Checks made before a run continues from a checkpoint ({@code --resume}), each failure one
 * {@link ConfigError} naming the checkpoint: the checkpoint's model must have the configured
 * model's architecture, its optimizer state must be intact (size and CRC32), of the configured
 * optimizer, and cover exactly this model's trainable tensors.
 */
public final class Resume {
    static final String WHERE = "--resume";

    private Resume() {}

    /** The checkpoint's model/ must be the configured model's architecture (the run continues it). */
    public static void checkSameModel(Path checkpoint, DiffusersFolder configured, DiffusersFolder saved) {
        String differs = !configured.unet().equals(saved.unet()) ? "unet/config.json"
                : !configured.textEncoder().equals(saved.textEncoder()) ? "text_encoder/config.json"
                : !configured.vae().equals(saved.vae()) ? "vae/config.json" : null;
        if (differs != null) {
            throw new ConfigError(WHERE + ": " + Json.quote(checkpoint.toString()) + " is a checkpoint of another model (its model/"
                    + differs + " differs from resume_ckpt " + Json.quote(configured.dir().toString())
                    + "'s); allowed: a checkpoint of the model train.json names");
        }
    }

    /**
     * Loads a saved optimizer state re-sharded for this rank's slices: the checkpoint may come from
     * any number of workers (one folder, or one {@code rank-R} folder per worker).
     */
    public static void loadOptimizer(ParamGroup p, Path checkpoint, String component) {
        if (p.store().optimizerState() == null) {
            return;
        }
        Path dir = checkpoint.resolve("optimizer").resolve(component);
        String ck = Json.quote(checkpoint.toString());
        List<OptimizerState> parts = new ArrayList<>();
        try {
            if (Files.isRegularFile(dir.resolve(OptimizerStateFile.JSON))) {
                parts.add(OptimizerStateFile.read(dir));
            } else if (Files.isDirectory(dir)) {
                try (Stream<Path> list = Files.list(dir)) {
                    for (Path r : list.filter(q -> q.getFileName().toString().startsWith("rank-")).sorted().toList()) {
                        parts.add(OptimizerStateFile.read(r));
                    }
                }
            }
        } catch (ConfigError e) {
            throw new ConfigError(WHERE + ": " + e.getMessage() + "; allowed: an intact checkpoint (resume from an earlier one)");
        } catch (IOException e) {
            throw new ConfigError(WHERE + ": cannot list " + Json.quote(dir.toString()) + ": " + e.getMessage());
        }
        if (parts.isEmpty()) {
            throw new ConfigError(WHERE + ": " + ck + " has no optimizer state for the " + component + " (optimizer/" + component
                    + "/" + OptimizerStateFile.JSON + " is missing); allowed: a complete checkpoint of a run that trained the "
                    + component);
        }
        String saved = parts.get(0).hyper().name().key();
        String wanted = p.hyper().name().key();
        if (!saved.equals(wanted)) {
            throw new ConfigError(WHERE + ": " + ck + " holds " + saved + " state for the " + component + ", the optimizer config "
                    + "resolves " + wanted + "; allowed: the checkpoint's optimizer (to switch optimizers, start a new run with "
                    + "resume_ckpt set to " + checkpoint.resolve("model") + ")");
        }
        try {
            p.store().loadOptimizerState(OptimizerState.reshard(parts, p.layout().shards().get(p.rank())));
        } catch (IllegalArgumentException e) {
            throw new ConfigError(WHERE + ": the " + component + " optimizer state in " + ck + " does not fit this model and freezing ("
                    + e.getMessage() + "); allowed: a checkpoint of the same model with the same text_encoder_freezing");
        }
    }
}
