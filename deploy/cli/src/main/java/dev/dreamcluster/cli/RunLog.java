package dev.dreamcluster.cli;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.encoder.PatternLayoutEncoder;
import ch.qos.logback.classic.filter.ThresholdFilter;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.Appender;
import ch.qos.logback.core.FileAppender;
import java.nio.file.Path;
import org.slf4j.LoggerFactory;

/**
 * Where log lines go. The terminal (stderr) shows warnings and errors only, so a rejected input's
 * {@code error:} line is not buried under INFO lines ({@code --verbose}, or
 * DREAMCLUSTER_LOG_LEVEL=INFO, shows them too); once a run holds its output folder, every INFO
 * line also goes to {@code <out>/train.log} (appended: one file records every attempt).
 */
final class RunLog implements AutoCloseable {
    static final String CONSOLE = "STDERR";

    private final Logger root;
    private final FileAppender<ILoggingEvent> file;

    private RunLog(Logger root, FileAppender<ILoggingEvent> file) {
        this.root = root;
        this.file = file;
    }

    /** Shows INFO lines on stderr too (they are hidden by default). */
    static void verbose() {
        if (!(LoggerFactory.getILoggerFactory() instanceof LoggerContext ctx)) {
            return;
        }
        Appender<ILoggingEvent> console = ctx.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME).getAppender(CONSOLE);
        if (console != null) {
            console.clearAllFilters();
            ThresholdFilter f = new ThresholdFilter();
            f.setLevel(Level.INFO.toString());
            f.start();
            console.addFilter(f);
        }
    }

    /** Adds {@code logFile} as a destination of every INFO+ line until closed. */
    static RunLog toFile(Path logFile) {
        if (!(LoggerFactory.getILoggerFactory() instanceof LoggerContext ctx)) {
            return new RunLog(null, null);
        }
        PatternLayoutEncoder enc = new PatternLayoutEncoder();
        enc.setContext(ctx);
        enc.setPattern("%d{yyyy-MM-dd HH:mm:ss.SSS} %-5level %logger{24} - %msg%n");
        enc.start();
        FileAppender<ILoggingEvent> app = new FileAppender<>();
        app.setContext(ctx);
        app.setName("RUN-" + logFile);
        app.setFile(logFile.toAbsolutePath().toString());
        app.setAppend(true);
        app.setEncoder(enc);
        app.start();
        Logger root = ctx.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
        root.addAppender(app);
        return new RunLog(root, app);
    }

    @Override
    public void close() {
        if (root != null) {
            root.detachAppender(file);
            file.stop();
        }
    }
}
