package dev.dreamcluster.config;

import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;

/** Learning-rate schedules (diffusers' names); the multipliers are in {@link LrSchedule}. */
public enum LrSchedulerName {
    CONSTANT,
    CONSTANT_WITH_WARMUP,
    LINEAR,
    COSINE,
    COSINE_WITH_RESTARTS,
    POLYNOMIAL;

    public String key() {
        return name().toLowerCase(Locale.ROOT);
    }

    public static LrSchedulerName parse(String text, String where) {
        for (LrSchedulerName n : values()) {
            if (n.key().equalsIgnoreCase(text.trim())) {
                return n;
            }
        }
        throw ConfigError.invalid(where, Json.quote(text), "valid schedulers: " + allowed());
    }

    static String allowed() {
        return Arrays.stream(values()).map(LrSchedulerName::key).collect(Collectors.joining(", "));
    }
}
