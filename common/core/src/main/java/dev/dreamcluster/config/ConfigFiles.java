package dev.dreamcluster.config;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Path;

/**
 * A run's config files, each read once: train.json and the optimizer.json that {@code
 * --optimizer_config} or train.json's {@code optimizer_config} names (relative to train.json's
 * folder; from the flag, to the working directory). Every command that resolves a run starts here
 * and passes the parsed trees on; nothing reads the files again.
 *
 * @param trainPath null when no train.json was given ({@code resolve} with flags only)
 * @param train train.json's tree, or null
 * @param optimizerPath the optimizer.json read, or null for the built-in defaults
 * @param optimizer its tree, or null
 */
public record ConfigFiles(Path trainPath, JsonNode train, Path optimizerPath, JsonNode optimizer) {

    /**
     * Reads {@code trainJson} (may be null) and the optimizer.json it or the flag names. A named file
     * that does not exist is an error naming who named it, never a fallback.
     */
    public static ConfigFiles read(Path trainJson, String optimizerFlag) {
        JsonNode train = trainJson == null ? null : Json.readObject(trainJson, trainJson.toString());
        Path optPath = null;
        String namedBy = "--optimizer_config";
        if (optimizerFlag != null) {
            optPath = Json.path(optimizerFlag, "--optimizer_config");
        } else if (train != null && train.hasNonNull("optimizer_config")) {
            JsonNode n = train.get("optimizer_config");
            namedBy = trainJson + " at optimizer_config";
            if (!n.isTextual() || n.asText().isBlank()) {
                throw ConfigError.invalid(namedBy, n.toString(), "a path to an optimizer.json, or null for the built-in defaults");
            }
            Path parent = trainJson.toAbsolutePath().getParent();
            Path named = Json.path(n.asText(), namedBy);
            optPath = named.isAbsolute() || parent == null ? named : relativize(parent.resolve(named));
        }
        JsonNode opt = null;
        if (optPath != null) {
            if (!optPath.toFile().isFile()) {
                throw new ConfigError(namedBy + ": optimizer config file " + Json.quote(optPath.toString()) + " does not exist");
            }
            opt = Json.readObject(optPath, optPath.toString());
        }
        return new ConfigFiles(trainJson, train, optPath, opt);
    }

    private static Path relativize(Path p) {
        Path cwd = Path.of("").toAbsolutePath();
        Path abs = p.toAbsolutePath().normalize();
        return abs.startsWith(cwd) ? cwd.relativize(abs) : abs;
    }

    /** train.json as the resolver's input (null without one). */
    public ConfigResolver.Input trainInput() {
        return train == null ? null : new ConfigResolver.Input(train, trainPath.toString());
    }

    /** optimizer.json as the resolver's input (null without one). */
    public ConfigResolver.Input optimizerInput() {
        return optimizer == null ? null : new ConfigResolver.Input(optimizer, optimizerPath.toString());
    }
}
