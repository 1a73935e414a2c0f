package dev.dreamcluster.io;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * {@code <out>/metrics.jsonl}: one {@link StepMetrics} line per step, appended and flushed as each
 * step ends (so a crash loses at most the line being written). One owner per run: the single-process
 * trainer, or the coordinator of a cluster run.
 */
public final class MetricsLog implements AutoCloseable {
    public static final String FILE = "metrics.jsonl";

    private final Path file;
    private final Writer writer;

    public MetricsLog(Path out) {
        this.file = out.resolve(FILE);
        try {
            Files.createDirectories(out);
            this.writer = Files.newBufferedWriter(file, StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot open " + file, e);
        }
    }

    public void append(StepMetrics m) {
        try {
            writer.write(m.toJsonLine());
            writer.write('\n');
            writer.flush();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot append to " + file, e);
        }
    }

    @Override
    public void close() {
        try {
            writer.close();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot close " + file, e);
        }
    }
}
