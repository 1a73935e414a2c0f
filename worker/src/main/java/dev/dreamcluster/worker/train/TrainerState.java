package dev.dreamcluster.worker.train;

import dev.dreamcluster.config.TrainConfig;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dreamcluster.config.Json;
import java.nio.file.Path;

/**
 * Where a run stands: optimizer updates done, the data position (epoch and batch within its plan)
 * and micro-steps done (the index every random draw is derived from). Saved in every checkpoint as
 * {@code trainer_state.json} with the resolved configs beside it.
 */
record TrainerState(int step, int epoch, int batchIndex, long microStep) {
    static final String FILE = "trainer_state.json";

    ObjectNode toJson(TrainConfig cfg, String resolvedOptimizerJson) {
        ObjectNode n = Json.MAPPER.createObjectNode();
        n.put("format", "dreamcluster-trainer-state");
        n.put("version", 1);
        n.put("step", step);
        n.put("epoch", epoch);
        n.put("batch_index", batchIndex);
        n.put("micro_step", microStep);
        n.set("train_config", cfg.toJson());
        try {
            n.set("optimizer_config", Json.MAPPER.readTree(resolvedOptimizerJson));
        } catch (java.io.IOException e) {
            throw new IllegalStateException(e);
        }
        return n;
    }

    static TrainerState read(Path checkpoint) {
        JsonNode n = Json.readObject(checkpoint.resolve(FILE), checkpoint.resolve(FILE).toString());
        if (!"dreamcluster-trainer-state".equals(n.path("format").asText())) {
            throw new IllegalArgumentException(checkpoint + " is not a DreamCluster checkpoint");
        }
        return new TrainerState(n.path("step").asInt(), n.path("epoch").asInt(), n.path("batch_index").asInt(),
                n.path("micro_step").asLong());
    }
}
