package dev.dreamcluster.config;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.List;
import java.util.Set;
import java.util.function.Consumer;

/**
 * EveryDream2's {@code validation_config} (its validation_default.json keys), resolved: the held-out
 * images are never trained on. {@code automatic} moves ceil(proportion x images) (at least one) out
 * of the training set, chosen by {@code seed}; {@code manual} validates on {@code manual_data_root}
 * and trains on all of data_root. Validation runs every {@code every_n_epochs} epochs (a fraction
 * such as 0.5 means twice per epoch).
 */
public record ValidationConfig(boolean validateTraining, String valSplitMode, double autoSplitProportion,
        Path manualDataRoot, long seed, double everyNEpochs) {

    static final Set<String> KEYS = Set.of("documentation", "validate_training", "val_split_mode", "auto_split_proportion",
            "manual_data_root", "seed", "every_n_epochs", "val_data_root", "val_split_proportion",
            "stabilize_training_loss", "stabilize_split_proportion", "extra_manual_datasets", "use_relative_loss",
            "batch_size");

    public ValidationConfig {
        if (!List.of("automatic", "manual", "none").contains(valSplitMode)) {
            throw ConfigError.invalid("validation_config at val_split_mode", "\"" + valSplitMode + "\"",
                    "automatic, manual or none");
        }
        if (!(autoSplitProportion > 0 && autoSplitProportion < 1)) {
            throw ConfigError.invalid("validation_config at auto_split_proportion", Double.toString(autoSplitProportion),
                    "a fraction in (0, 1)");
        }
        if (validateTraining && valSplitMode.equals("manual") && manualDataRoot == null) {
            throw new ConfigError("validation_config at manual_data_root: missing (val_split_mode manual needs a folder)");
        }
        if (!(everyNEpochs > 0) || !Double.isFinite(everyNEpochs)) {
            throw ConfigError.invalid("validation_config at every_n_epochs", Double.toString(everyNEpochs), "a number > 0");
        }
    }

    /** Whether any validation runs. */
    public boolean active() {
        return validateTraining && !valSplitMode.equals("none");
    }

    /**
     * Reads an inline object (what {@link #toJson} writes) or the JSON file a path names (relative to
     * {@code base}). Keys without effect here get one {@code note} each.
     */
    static ValidationConfig read(JsonNode value, Path base, String where, Consumer<String> note) {
        JsonNode j = value;
        String label = where;
        if (value.isTextual()) {
            Path f = base.resolve(value.asText()).normalize();
            if (!f.toFile().isFile()) {
                throw new ConfigError(where + ": validation config file \"" + value.asText() + "\" does not exist");
            }
            j = Json.readObject(f, f.toString());
            label = f.toString();
        } else if (!value.isObject()) {
            throw ConfigError.invalid(where, value.toString(), "a path to a validation config JSON file, or null");
        }
        for (Iterator<String> it = j.fieldNames(); it.hasNext(); ) {
            String k = it.next();
            if (!KEYS.contains(k)) {
                note.accept(label + ": unknown key \"" + k + "\" is ignored (EveryDream2 ignores it too)");
            }
        }
        String l = label;
        if (j.path("stabilize_training_loss").asBoolean(false)) {
            throw new ConfigError(l + " at stabilize_training_loss: true is not supported (the stabilized training-loss pass"
                    + " is not implemented; allowed: false)");
        }
        if (j.path("extra_manual_datasets").isObject() && !j.path("extra_manual_datasets").isEmpty()) {
            throw new ConfigError(l + " at extra_manual_datasets: " + j.get("extra_manual_datasets")
                    + " is not supported (one validation set; allowed: {})");
        }
        if (j.path("use_relative_loss").asBoolean(false)) {
            note.accept(l + ": use_relative_loss has no effect here: val_loss is always the absolute loss");
        }
        if (j.hasNonNull("batch_size")) {
            note.accept(l + ": batch_size has no effect here: validation runs one image at a time (same loss)");
        }
        String manual = text(j, "manual_data_root", l);
        if (manual == null && j.hasNonNull("val_data_root")) {
            note.accept(l + ": \"val_data_root\" is EveryDream2's old name for manual_data_root");
            manual = text(j, "val_data_root", l);
        }
        double proportion = j.path("auto_split_proportion").asDouble(0.15);
        if (!j.hasNonNull("auto_split_proportion") && j.hasNonNull("val_split_proportion")) {
            note.accept(l + ": \"val_split_proportion\" is EveryDream2's old name for auto_split_proportion");
            proportion = j.get("val_split_proportion").asDouble();
        }
        String mode = j.hasNonNull("val_split_mode") ? text(j, "val_split_mode", l) : "automatic";
        return new ValidationConfig(j.path("validate_training").asBoolean(true), mode, proportion,
                manual == null ? null : base.resolve(manual).normalize(), j.path("seed").asLong(555),
                j.path("every_n_epochs").asDouble(1));
    }

    private static String text(JsonNode j, String key, String label) {
        return JsonFields.optionalText(j, key, label);
    }

    ObjectNode toJson() {
        ObjectNode n = Json.MAPPER.createObjectNode();
        n.put("validate_training", validateTraining);
        n.put("val_split_mode", valSplitMode);
        n.put("auto_split_proportion", autoSplitProportion);
        if (manualDataRoot == null) {
            n.putNull("manual_data_root");
        } else {
            n.put("manual_data_root", manualDataRoot.toString());
        }
        n.put("seed", seed);
        n.put("every_n_epochs", everyNEpochs);
        return n;
    }
}
