package dev.dreamcluster.worker.train.ckpt;

import dev.dreamcluster.config.TrainConfig;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.config.Json;
import java.nio.file.Path;

/**
 * Where a run stands: optimizer updates done, the data position (epoch and batch within its plan)
 * and micro-steps done (the index every random draw is derived from). Saved in every checkpoint as
 * {@code trainer_state.json} with the resolved configs beside it.
 */
public record TrainerState(int step, int epoch, int batchIndex, long microStep, int[] batchSplit) {
    /** A state without a recorded cut (an even one is derived from the worker count). */
    public TrainerState(int step, int epoch, int batchIndex, long microStep) {
        this(step, epoch, batchIndex, microStep, null);
    }

    public static final String FILE = "trainer_state.json";

    public ObjectNode toJson(TrainConfig cfg, String resolvedOptimizerJson) {
        ObjectNode n = Json.MAPPER.createObjectNode();
        n.put("format", "dreamcluster-trainer-state");
        n.put("version", 1);
        n.put("step", step);
        n.put("epoch", epoch);
        n.put("batch_index", batchIndex);
        n.put("micro_step", microStep);
        if (batchSplit != null) { // the cut of each global micro-batch between the ranks: a resume on as many replays it
            com.fasterxml.jackson.databind.node.ArrayNode a = n.putArray("batch_split");
            for (int c : batchSplit) {
                a.add(c);
            }
        }
        n.set("train_config", cfg.toJson());
        try {
            n.set("optimizer_config", Json.MAPPER.readTree(resolvedOptimizerJson));
        } catch (java.io.IOException e) {
            throw new IllegalStateException(e);
        }
        return n;
    }

    /** Reads a checkpoint's state; every field must be a whole number in range (never "two", never -5). */
    public static TrainerState read(Path checkpoint) {
        Path file = checkpoint.resolve(FILE);
        JsonNode n = Json.readObject(file, file.toString());
        if (!"dreamcluster-trainer-state".equals(n.path("format").asText())) {
            throw new ConfigError(file + " at format: " + n.path("format") + " is not allowed (\"dreamcluster-trainer-state\": "
                    + checkpoint + " is not a DreamCluster checkpoint)");
        }
        int max = Integer.MAX_VALUE;
        int[] split = null;
        JsonNode b = n.get("batch_split");
        if (b != null && !b.isNull()) {
            if (!b.isArray() || b.isEmpty()) {
                throw new ConfigError(file + " at batch_split: " + b + " is not allowed (a list of image counts, one per rank)");
            }
            split = new int[b.size()];
            for (int r = 0; r < split.length; r++) {
                split[r] = (int) Json.wholeNumber(b.get(r), file + " at batch_split", 1, max, "image counts >= 1");
            }
        }
        return new TrainerState((int) field(n, file, "step", max), (int) field(n, file, "epoch", max),
                (int) field(n, file, "batch_index", max), field(n, file, "micro_step", Long.MAX_VALUE), split);
    }

    private static long field(JsonNode n, Path file, String key, long max) {
        String where = file + " at " + key;
        if (!n.has(key)) {
            throw new ConfigError(where + ": missing (allowed: a whole number >= 0)");
        }
        return Json.wholeNumber(n.get(key), where, 0, max, "a whole number >= 0");
    }
}
