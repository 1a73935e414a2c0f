package dev.dreamcluster.config;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Path;

/**
 * Everything that decides what a run computes, resolved once by the coordinator (or the
 * single-process launcher) from train.json, optimizer.json and the flags: the training keys and
 * both components' optimizer settings with their provenance and the freezing plan. Workers receive
 * it in the run plan as JSON ({@link #toJson}) and never read a config file; every checkpoint
 * carries it ({@code trainer_state.json}).
 */
public record RunConfig(TrainConfig train, ResolvedTrainingConfig optimizer, ObjectNode compute) {
    /** train.json's device and precision keys that travel as written (the worker's ComputeConfig reads them). */
    public static final java.util.List<String> COMPUTE_KEYS = java.util.List.of("device", "amp", "disable_amp", "amp_dtype", "collective",
            "gradient_checkpointing");

    public RunConfig {
        compute = compute == null ? Json.MAPPER.createObjectNode() : compute.deepCopy();
    }

    /** A run with train.json's compute keys at their defaults (CPU, fp32). */
    public RunConfig(TrainConfig train, ResolvedTrainingConfig optimizer) {
        this(train, optimizer, null);
    }

    /**
     * The compute keys of {@code trainJson} (as written) and optimizer.json's {@code
     * apply_grad_scaler_step_tweaks}: what the workers' device and mixed-precision settings derive from.
     */
    public static ObjectNode computeKeys(JsonNode trainJson, JsonNode optimizerJson) {
        ObjectNode n = Json.MAPPER.createObjectNode();
        for (String k : COMPUTE_KEYS) {
            if (trainJson != null && trainJson.hasNonNull(k)) {
                n.set(k, trainJson.get(k));
            }
        }
        if (optimizerJson != null && optimizerJson.hasNonNull("apply_grad_scaler_step_tweaks")) {
            n.set("apply_grad_scaler_step_tweaks", optimizerJson.get("apply_grad_scaler_step_tweaks"));
        }
        return n;
    }

    /**
     * {"train_config": {...train.json keys...}, "optimizer_config": {...as resolve --json prints...}},
     * numbers as Python prints them (3e-05).
     */
    public String toJson() {
        return "{\"train_config\":" + train.toJson() + ",\"optimizer_config\":" + ResolvedConfigJson.write(optimizer)
                + ",\"compute_config\":" + compute + "}";
    }

    public ObjectNode toJsonNode() {
        try {
            return (ObjectNode) Json.MAPPER.readTree(toJson());
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    public static RunConfig fromJson(String json) {
        try {
            return fromJsonNode(Json.MAPPER.readTree(json));
        } catch (JsonProcessingException e) {
            throw new ConfigError("run plan: the run config is not valid JSON: " + e.getOriginalMessage());
        }
    }

    public static RunConfig fromJsonNode(JsonNode n) {
        JsonNode c = n.path("compute_config");
        return new RunConfig(TrainConfig.fromJson(n.path("train_config")), ResolvedConfigJson.read(n.path("optimizer_config")),
                c.isObject() ? (ObjectNode) c : null);
    }

    /** This node's copies of the data and the model and its output folder (null: the plan's). */
    public RunConfig withPaths(Path dataRoot, Path model, Path out) {
        return new RunConfig(train.withPaths(dataRoot, model, out), optimizer, compute);
    }
}
