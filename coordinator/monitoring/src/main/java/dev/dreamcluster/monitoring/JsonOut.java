package dev.dreamcluster.monitoring;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.json.JsonReadFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dreamcluster.protocol.TrainingEvent;
import java.util.Iterator;
import java.util.Map;

/**
 * JSON for browsers and scripts: snake_case names (as in metrics.jsonl), run ids as strings (they
 * exceed JavaScript's 2^53), and NaN or infinite numbers as null (JSON has no NaN; metrics.jsonl may).
 */
final class JsonOut {
    /** Thread-safe once configured; configured only here. */
    private static final ObjectMapper MAPPER = JsonMapper.builder()
            .propertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
            .enable(JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS)
            .build();

    private JsonOut() {}

    static ObjectNode object() {
        return MAPPER.createObjectNode();
    }

    static ArrayNode array() {
        return MAPPER.createArrayNode();
    }

    /** {@code node.key = value}, null when the value is not finite. */
    static void number(ObjectNode node, String key, double value) {
        if (Double.isFinite(value)) {
            node.put(key, value);
        } else {
            node.putNull(key);
        }
    }

    /** One metrics.jsonl line (NaN tolerated and turned into null), or null when it is not a JSON object. */
    static ObjectNode parseRow(String line) {
        try {
            JsonNode n = MAPPER.readTree(line);
            return n instanceof ObjectNode o ? (ObjectNode) scrub(o) : null;
        } catch (JsonProcessingException e) {
            return null; // a line being written right now, or not ours
        }
    }

    /** An event as {@code {"type": "StepCompleted", "run_id": "...", "step": 3, ...}}. */
    static ObjectNode event(TrainingEvent e) {
        ObjectNode n = object();
        n.put("type", e.getClass().getSimpleName());
        n.setAll((ObjectNode) scrub(MAPPER.valueToTree(e)));
        if (n.has("run_id")) {
            n.put("run_id", Long.toString(n.get("run_id").asLong()));
        }
        return n;
    }

    static String write(JsonNode n) {
        try {
            return MAPPER.writeValueAsString(n);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("a tree of plain nodes always serializes", e);
        }
    }

    private static JsonNode scrub(JsonNode n) {
        if (n instanceof ObjectNode o) {
            for (Iterator<Map.Entry<String, JsonNode>> it = o.fields(); it.hasNext();) {
                Map.Entry<String, JsonNode> f = it.next();
                if (f.getValue().isNumber() && !Double.isFinite(f.getValue().asDouble())) {
                    f.setValue(o.nullNode());
                } else {
                    scrub(f.getValue());
                }
            }
        } else if (n instanceof ArrayNode a) {
            for (int i = 0; i < a.size(); i++) {
                if (a.get(i).isNumber() && !Double.isFinite(a.get(i).asDouble())) {
                    a.set(i, a.nullNode());
                } else {
                    scrub(a.get(i));
                }
            }
        }
        return n;
    }
}
