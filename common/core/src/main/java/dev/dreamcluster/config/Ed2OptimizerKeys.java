package dev.dreamcluster.config;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;

/**
 * EveryDream2's own top-level optimizer.json keys that have no effect here (spec section 2): they
 * are accepted so its stock files load unchanged, each with one note saying why.
 */
final class Ed2OptimizerKeys {
    private Ed2OptimizerKeys() {}

    static List<String> notes(JsonNode root, String label) {
        List<String> notes = new ArrayList<>();
        note(root, label, "apply_grad_scaler_step_tweaks", notes,
                "EveryDream2's GradScaler growth tweaks at steps 500/1000/2000/4000 apply only to fp16 mixed precision "
                        + "(amp on GPU workers); fp32 training has no loss scale (a non-finite step is skipped instead)");
        note(root, label, "log_grad_norm", notes, "the global gradient norm is always logged (metrics.jsonl grad_norm)");
        return notes;
    }

    private static void note(JsonNode root, String label, String key, List<String> notes, String why) {
        JsonNode n = root.get(key);
        if (n == null || n.isNull()) {
            return;
        }
        if (!n.isBoolean()) {
            throw ConfigError.invalid(label + " at " + key, n.toString(), "true or false");
        }
        notes.add(label + ": " + key + " (" + n.booleanValue() + ") has no effect here: " + why);
    }
}
