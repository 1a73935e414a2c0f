package dev.dreamcluster.config;

import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;

/** The optimizers DreamCluster implements; see {@code shared/spec/optimizers.md}. */
public enum OptimizerName {
    ADAMW,
    ADAMW8BIT,
    LION,
    LION8BIT;

    /** The name as users write it in optimizer.json. */
    public String key() {
        return name().toLowerCase(Locale.ROOT);
    }

    public boolean isLion() {
        return this == LION || this == LION8BIT;
    }

    public boolean is8bit() {
        return this == ADAMW8BIT || this == LION8BIT;
    }

    /** Case-insensitive lookup; anything else is an error listing the supported names. */
    public static OptimizerName parse(String text, String where) {
        for (OptimizerName n : values()) {
            if (n.key().equalsIgnoreCase(text.trim())) {
                return n;
            }
        }
        throw ConfigError.invalid(where, Json.quote(text), "supported optimizers: " + allowed());
    }

    static String allowed() {
        return Arrays.stream(values()).map(OptimizerName::key).collect(Collectors.joining(", "));
    }
}
