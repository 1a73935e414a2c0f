package dev.dreamcluster.config;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Path;
import java.util.Map;

/**
 * What a run leaves besides checkpoints (train.json keys, EveryDream2 names; paths relative to
 * train.json):
 *
 * @param samplePrompts {@code sample_prompts}: a .txt or .json of sample prompts, or null for no samples
 * @param sampleSteps {@code sample_steps}: samples every N optimizer steps (EveryDream2's default 250)
 * @param logdir {@code logdir}: TensorBoard event files go to {@code <logdir>/<project_name>-<time>/}; null: none
 * @param saveSingleFile {@code save_single_file}: also write the final model as one LDM-layout
 *     {@code <out>/final.safetensors} (what A1111 and ComfyUI load)
 * @param projectName {@code project_name}, naming the TensorBoard run folder
 */
public record OutputsConfig(Path samplePrompts, int sampleSteps, Path logdir, boolean saveSingleFile, String projectName) {
    public static final OutputsConfig NONE = new OutputsConfig(null, 250, null, false, "dreamcluster");

    public OutputsConfig {
        if (sampleSteps < 1) {
            throw ConfigError.invalid("sample_steps", Integer.toString(sampleSteps), "a whole number >= 1");
        }
    }

    /** Reads the keys from train.json {@code j} ({@code overrides}: flag values by key, null when not given). */
    static OutputsConfig read(JsonNode j, Map<String, Object> overrides, String label, Path base) {
        String prompts = text(j, overrides, label, "sample_prompts");
        String logdir = text(j, overrides, label, "logdir");
        JsonNode steps = node(j, overrides, "sample_steps");
        if (steps != null && (!steps.isNumber() || steps.doubleValue() != Math.rint(steps.doubleValue()) || steps.doubleValue() < 1
                || steps.doubleValue() > Integer.MAX_VALUE)) {
            throw ConfigError.invalid(label + " at sample_steps", steps.toString(), "a whole number >= 1");
        }
        JsonNode single = node(j, overrides, "save_single_file");
        if (single != null && !single.isBoolean()) {
            throw ConfigError.invalid(label + " at save_single_file", single.toString(), "true or false");
        }
        String project = text(j, overrides, label, "project_name");
        return new OutputsConfig(prompts == null ? null : base.resolve(prompts).normalize(), steps == null ? 250 : steps.intValue(),
                logdir == null ? null : base.resolve(logdir).normalize(), single != null && single.booleanValue(),
                project == null ? "dreamcluster" : project);
    }

    void write(ObjectNode n) {
        put(n, "sample_prompts", samplePrompts);
        n.put("sample_steps", sampleSteps);
        put(n, "logdir", logdir);
        n.put("save_single_file", saveSingleFile);
        n.put("project_name", projectName);
    }

    private static void put(ObjectNode n, String key, Path p) {
        if (p == null) {
            n.putNull(key);
        } else {
            n.put(key, p.toString());
        }
    }

    private static JsonNode node(JsonNode j, Map<String, Object> overrides, String key) {
        Object o = overrides.get(key);
        if (o != null) {
            return Json.MAPPER.valueToTree(o);
        }
        JsonNode n = j.get(key);
        return n == null || n.isNull() ? null : n;
    }

    private static String text(JsonNode j, Map<String, Object> overrides, String label, String key) {
        JsonNode n = node(j, overrides, key);
        if (n == null) {
            return null;
        }
        if (!n.isTextual() || n.asText().isBlank()) {
            throw ConfigError.invalid(label + " at " + key, n.toString(), "a non-empty string");
        }
        return n.asText();
    }
}
