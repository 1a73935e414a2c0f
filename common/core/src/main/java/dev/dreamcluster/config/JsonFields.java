package dev.dreamcluster.config;

import com.fasterxml.jackson.databind.JsonNode;

/**
 * The one set of typed getters for config JSON (train.json, optimizer.json, validation and plan
 * blocks). Two shapes: {@code value*} check a node already in hand and name it by {@code where};
 * {@code optional*} read an object's field, null when it is absent or JSON null, and name it
 * "{@code label} at {@code key}". A wrong type or value is always a {@link ConfigError} (one line,
 * exit 2): numbers are never rounded, wrapped or clamped on the way in.
 */
public final class JsonFields {
    private JsonFields() {}

    /** A number (any JSON number; a finite check is the caller's, with its own allowed range). */
    public static double valueNumber(JsonNode n, String where) {
        if (n == null || !n.isNumber()) {
            throw ConfigError.invalid(where, String.valueOf(n), "a number");
        }
        return n.doubleValue();
    }

    /** A whole number that fits an int: 3 and 3.0 pass, 3.5 and 2^31 are refused (never truncated). */
    public static int valueInt(JsonNode n, String where, String allowed) {
        if (n == null || !n.isNumber()) {
            throw ConfigError.invalid(where, String.valueOf(n), allowed);
        }
        double d = n.doubleValue();
        if (d != Math.rint(d) || Math.abs(d) > Integer.MAX_VALUE) {
            throw ConfigError.invalid(where, n.toString(), allowed);
        }
        return (int) d;
    }

    /** A JSON string. */
    public static String valueText(JsonNode n, String where, String allowed) {
        if (n == null || !n.isTextual()) {
            throw ConfigError.invalid(where, String.valueOf(n), allowed);
        }
        return n.textValue();
    }

    /** {@code obj.key} as a string, or null when absent. */
    public static String optionalText(JsonNode obj, String key, String label) {
        JsonNode n = obj.get(key);
        return n == null || n.isNull() ? null : valueText(n, label + " at " + key, "a string");
    }

    /** {@code obj.key} as true/false, or null when absent. */
    public static Boolean optionalBool(JsonNode obj, String key, String label) {
        JsonNode n = obj.get(key);
        if (n == null || n.isNull()) {
            return null;
        }
        if (!n.isBoolean()) {
            throw ConfigError.invalid(label + " at " + key, n.toString(), "true or false");
        }
        return n.booleanValue();
    }
}
