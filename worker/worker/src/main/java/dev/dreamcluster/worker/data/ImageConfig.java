package dev.dreamcluster.worker.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import dev.dreamcluster.config.ConfigError;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.function.Consumer;

/**
 * EveryDream2's per-image configuration (data/dataset.py ImageConfig): caption parts and options
 * from global.yaml, local.yaml, multiply.txt, cond_dropout.txt, flip_p.txt, loss_scale.txt,
 * shuffle_tags.txt and the image's .txt/.caption/.yml/.yaml sidecars, folded in that order: a later
 * scalar wins, main prompts and tags are unions with the later ones first (so the newest main prompt
 * is the one used), shuffle_tags is true if any part says so. Null means "not set here".
 */
record ImageConfig(List<String> mainPrompts, List<String> tags, Double multiply, Double condDropout, Double flipP,
        Boolean shuffleTags, Double lossScale) {

    static final ImageConfig EMPTY = new ImageConfig(List.of(), List.of(), null, null, null, null, null);
    private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());
    /** yaml keys EveryDream2 reads that change nothing here. */
    private static final List<String> NOTED = List.of("rating", "batch_id", "max_caption_length");

    /** {@code other} laid over this one (EveryDream2's merge: other is the newer config). */
    ImageConfig merge(ImageConfig other) {
        return new ImageConfig(union(other.mainPrompts, mainPrompts), union(other.tags, tags),
                over(other.multiply, multiply), over(other.condDropout, condDropout), over(other.flipP, flipP),
                (other.shuffleTags != null && other.shuffleTags) || (shuffleTags != null && shuffleTags) ? Boolean.TRUE
                        : over(other.shuffleTags, shuffleTags),
                over(other.lossScale, lossScale));
    }

    private static <T> T over(T newer, T older) {
        return newer != null ? newer : older;
    }

    private static List<String> union(List<String> first, List<String> then) {
        LinkedHashSet<String> s = new LinkedHashSet<>(first);
        s.addAll(then);
        return List.copyOf(s);
    }

    /** The caption EveryDream2 trains on: main prompt, then ", " and the tags. */
    String caption() {
        String main = mainPrompts.isEmpty() ? "" : mainPrompts.get(0);
        return tags.isEmpty() ? main : main + ", " + String.join(", ", tags);
    }

    /** A .txt/.caption caption: split at commas, first part the main prompt, the rest tags. */
    static ImageConfig fromCaptionText(String text) {
        if (text == null || text.isBlank()) {
            return EMPTY;
        }
        List<String> parts = new ArrayList<>();
        for (String p : text.split(",", -1)) {
            parts.add(p.strip());
        }
        return new ImageConfig(List.of(parts.get(0)), parts.subList(1, parts.size()).stream().filter(s -> !s.isEmpty()).toList(),
                null, null, null, null, null);
    }

    static ImageConfig fromTextFile(Path f) {
        return fromCaptionText(read(f).strip());
    }

    /** A number file (multiply.txt, cond_dropout.txt, ...); a bad value is an error naming the file. */
    static double readNumber(Path f, double min, double max) {
        String s = read(f).strip();
        try {
            double v = Double.parseDouble(s);
            if (v >= min && v <= max) {
                return v;
            }
        } catch (NumberFormatException e) {
            // reported below
        }
        throw ConfigError.invalid(f.toString(), "\"" + s + "\"", "a number in [" + min + ", " + max + "]");
    }

    /** global.yaml, local.yaml or an image's .yaml: main_prompt, tags, caption and the options above. */
    static ImageConfig fromYaml(Path f, Consumer<String> note) {
        JsonNode n;
        try {
            n = YAML.readTree(read(f));
        } catch (IOException e) {
            throw new ConfigError(f + ": not valid YAML (" + e.getMessage().lines().findFirst().orElse("") + ")");
        }
        if (n == null || n.isNull() || n.isMissingNode()) {
            return EMPTY;
        }
        if (!n.isObject()) {
            throw ConfigError.invalid(f.toString(), n.toString(), "a YAML mapping (main_prompt, tags, multiply, ...)");
        }
        for (String k : NOTED) {
            if (n.hasNonNull(k)) {
                note.accept(f + ": " + k + " has no effect here (not implemented)");
            }
        }
        List<String> tags = new ArrayList<>();
        boolean weighted = false;
        for (JsonNode t : n.path("tags")) {
            if (t.isTextual()) {
                tags.add(t.asText());
            } else if (t.isObject() && t.hasNonNull("tag")) {
                tags.add(t.get("tag").asText());
                weighted |= t.hasNonNull("weight") && t.get("weight").asDouble() != 1.0;
            }
        }
        if (weighted) {
            note.accept(f + ": tag weights have no effect here (tags are shuffled uniformly)");
        }
        ImageConfig c = new ImageConfig(strings(n.get("main_prompt")), tags, num(n, "multiply", f), num(n, "cond_dropout", f),
                num(n, "flip_p", f), n.hasNonNull("shuffle_tags") ? n.get("shuffle_tags").asBoolean() : null,
                num(n, "loss_scale", f));
        if (n.hasNonNull("caption")) {
            c = c.merge(fromCaptionText(n.get("caption").asText()));
        }
        return c;
    }

    private static List<String> strings(JsonNode n) {
        List<String> l = new ArrayList<>();
        if (n == null || n.isNull()) {
            return l;
        }
        if (n.isArray()) {
            n.forEach(x -> l.add(x.asText()));
        } else if (!n.asText().isEmpty()) {
            l.add(n.asText());
        }
        return l;
    }

    private static Double num(JsonNode n, String key, Path f) {
        JsonNode v = n.get(key);
        if (v == null || v.isNull()) {
            return null;
        }
        if (!v.isNumber()) {
            throw ConfigError.invalid(f + " at " + key, v.toString(), "a number");
        }
        return v.doubleValue();
    }

    /** Caption and yaml sidecars: UTF-8, or UTF-16 with its byte-order mark (CaptionText's rule). */
    private static String read(Path f) {
        return CaptionText.read(f);
    }
}
