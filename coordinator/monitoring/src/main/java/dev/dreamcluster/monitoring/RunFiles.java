package dev.dreamcluster.monitoring;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * What a run leaves under its output folder, read for the monitors: metrics.jsonl rows, committed
 * checkpoints ({@code checkpoints/step-N/} with trainer_state.json, which is written last) and the
 * sample images under {@code samples/}. Blocking file IO: callers run it off the actor threads.
 */
final class RunFiles {
    private static final Pattern STEP_DIR = Pattern.compile("step-(\\d+)");
    private static final List<String> IMAGE_SUFFIXES = List.of(".png", ".jpg", ".jpeg", ".webp", ".gif");

    record Checkpoint(int step, Path path) {}

    private final Path out;

    RunFiles(Path out) {
        this.out = out;
    }

    Path samplesDir() {
        return out.resolve("samples");
    }

    /** Every complete metrics.jsonl row whose step is at least {@code since}, in file order. */
    List<ObjectNode> metricsSince(int since) {
        String text;
        try {
            text = Files.readString(out.resolve("metrics.jsonl"), StandardCharsets.UTF_8);
        } catch (NoSuchFileException e) {
            return List.of();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        List<ObjectNode> rows = new ArrayList<>();
        int end = text.lastIndexOf('\n'); // a last line without its newline is still being written
        for (String line : text.substring(0, Math.max(0, end)).split("\n")) {
            ObjectNode row = line.isBlank() ? null : JsonOut.parseRow(line);
            if (row != null && row.path("step").asInt(-1) >= since) {
                rows.add(row);
            }
        }
        return rows;
    }

    /** Committed checkpoints, oldest first. */
    List<Checkpoint> checkpoints() {
        Path dir = out.resolve("checkpoints");
        if (!Files.isDirectory(dir)) {
            return List.of();
        }
        try (Stream<Path> s = Files.list(dir)) {
            List<Checkpoint> found = new ArrayList<>();
            s.forEach(p -> {
                Matcher m = STEP_DIR.matcher(p.getFileName().toString());
                if (m.matches() && Files.isRegularFile(p.resolve("trainer_state.json"))) {
                    found.add(new Checkpoint(Integer.parseInt(m.group(1)), p));
                }
            });
            found.sort(Comparator.comparingInt(Checkpoint::step));
            return found;
        } catch (IOException e) {
            return List.of(); // listed while being renamed: the next poll sees it
        }
    }

    /** Image files under samples/ (relative, '/'-separated), newest first, at most {@code limit}. */
    List<String> latestSamples(int limit) {
        Path dir = samplesDir();
        if (!Files.isDirectory(dir)) {
            return List.of();
        }
        record Found(String rel, FileTime time) {}
        try (Stream<Path> s = Files.walk(dir, 4)) {
            return s.filter(p -> Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS) && isImage(p)).map(p -> {
                try {
                    return new Found(dir.relativize(p).toString().replace('\\', '/'), Files.getLastModifiedTime(p));
                } catch (IOException e) {
                    return null;
                }
            }).filter(f -> f != null).sorted(Comparator.comparing(Found::time).reversed().thenComparing(Found::rel))
                    .limit(limit).map(Found::rel).toList();
        } catch (IOException | UncheckedIOException e) {
            return List.of();
        }
    }

    /**
     * The file {@code samples/<segments...>} names, if it is a regular file inside samples/ (after
     * resolving links): no segment may be empty, "." or "..", or hold a separator or NUL.
     */
    Optional<Path> sample(List<String> segments) {
        if (segments.isEmpty()) {
            return Optional.empty();
        }
        Path p = samplesDir();
        for (String s : segments) {
            if (s.isEmpty() || s.equals(".") || s.equals("..") || s.indexOf('/') >= 0 || s.indexOf('\\') >= 0 || s.indexOf('\0') >= 0) {
                return Optional.empty();
            }
            p = p.resolve(s);
        }
        try {
            Path real = p.toRealPath();
            if (!real.startsWith(samplesDir().toRealPath()) || !Files.isRegularFile(real)) {
                return Optional.empty();
            }
            return Optional.of(real);
        } catch (IOException e) {
            return Optional.empty();
        }
    }

    static boolean isImage(Path p) {
        String name = p.getFileName().toString().toLowerCase(Locale.ROOT);
        return IMAGE_SUFFIXES.stream().anyMatch(name::endsWith);
    }
}
