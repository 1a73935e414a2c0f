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
public record RunConfig(TrainConfig train, ResolvedTrainingConfig optimizer) {

    /**
     * {"train_config": {...train.json keys...}, "optimizer_config": {...as resolve --json prints...}},
     * numbers as Python prints them (3e-05).
     */
    public String toJson() {
        return "{\"train_config\":" + train.toJson() + ",\"optimizer_config\":" + ResolvedConfigJson.write(optimizer) + "}";
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
        return new RunConfig(TrainConfig.fromJson(n.path("train_config")), ResolvedConfigJson.read(n.path("optimizer_config")));
    }

    /** This node's copies of the data and the model and its output folder (null: the plan's). */
    public RunConfig withPaths(Path dataRoot, Path model, Path out) {
        return new RunConfig(train.withPaths(dataRoot, model, out), optimizer);
    }
}
