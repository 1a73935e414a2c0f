package dev.dreamcluster.io;

import com.fasterxml.jackson.databind.JsonNode;
import dev.dreamcluster.config.Json;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code <out>/metrics.jsonl}: one {@link StepMetrics} line per step, appended and flushed as each
 * step ends (a crash loses at most the line being written). One owner per run: the single-process
 * trainer, or the coordinator of a cluster run (one run per folder: {@link OutputLock}).
 *
 * <p>The file is opened at the first line, never before (a run refused at start leaves none). A run
 * that starts at step 0 starts it empty; one that continues after step S (a resume, or an elastic
 * generation restarting from a checkpoint) keeps the lines up to S and drops later ones, which
 * belong to the steps trained again: the file reads as one history with each step once.
 */
public final class MetricsLog implements AutoCloseable {
    public static final String FILE = "metrics.jsonl";

    private final Path out;
    private Writer writer;

    public MetricsLog(Path out) {
        this.out = out;
    }

    public void append(StepMetrics m) {
        writeLine(m.toJsonLine(), m.step() == 0 ? 0 : m.step() - 1);
    }

    /**
     * A control action's line ({@code {"step": S, "control": "pause", "seq": N, "detail": ...}}), kept and
     * trimmed with the step lines: a reader tells it from a step's line by its "control" key.
     */
    public void appendControl(int step, long seq, String action, String detail) {
        try {
            writeLine(Json.MAPPER.writeValueAsString(Json.MAPPER.createObjectNode().put("step", step).put("control", action)
                    .put("seq", seq).put("detail", detail)), step);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot append to " + out.resolve(FILE), e);
        }
    }

    /** One line; the file is opened at the first, keeping the lines up to {@code keepThrough}. */
    private void writeLine(String json, int keepThrough) {
        try {
            if (writer == null) {
                writer = continueAfter(out, keepThrough);
            }
            writer.write(json);
            writer.write('\n');
            writer.flush();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot append to " + out.resolve(FILE), e);
        }
    }

    /** The next line starts a new history: the file is reopened (and trimmed) at the next append. */
    public void restart() {
        close();
    }

    private static Writer continueAfter(Path out, int step) throws IOException {
        Files.createDirectories(out);
        Path file = out.resolve(FILE);
        if (step == 0 || !Files.exists(file)) {
            return Files.newBufferedWriter(file, StandardCharsets.UTF_8, StandardOpenOption.CREATE,
                    StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE);
        }
        List<String> keep = new ArrayList<>();
        for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
            JsonNode n;
            try {
                n = Json.MAPPER.readTree(line);
            } catch (IOException e) {
                continue; // a line torn by a crash
            }
            if (n != null && n.path("step").canConvertToInt() && n.path("step").asInt() <= step) {
                keep.add(line);
            }
        }
        AtomicFiles.writeString(file, keep.isEmpty() ? "" : String.join("\n", keep) + "\n");
        return Files.newBufferedWriter(file, StandardCharsets.UTF_8, StandardOpenOption.APPEND, StandardOpenOption.WRITE);
    }

    @Override
    public void close() {
        if (writer == null) {
            return;
        }
        try {
            writer.close();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot close " + out.resolve(FILE), e);
        } finally {
            writer = null;
        }
    }
}
