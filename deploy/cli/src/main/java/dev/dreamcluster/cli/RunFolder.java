package dev.dreamcluster.cli;

import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.io.OutputLock;
import java.io.PrintWriter;
import java.nio.file.Path;

/**
 * What {@code train} and {@code coordinator} hold while a run owns its output folder: the
 * {@link OutputLock} (one run per folder; a re-run needs --resume or --overwrite) and the
 * {@code <out>/train.log} destination of the log. Closing releases both.
 */
final class RunFolder implements AutoCloseable {
    private final OutputLock lock;
    private final RunLog log;

    private RunFolder(OutputLock lock, RunLog log) {
        this.lock = lock;
        this.log = log;
    }

    /**
     * @param where the flag or file and key that named the folder, for errors
     * @param resume the checkpoint a run continues from, or null
     */
    static RunFolder claim(Path out, String where, Path resume, boolean overwrite, PrintWriter err) {
        if (overwrite && resume != null) {
            throw new ConfigError("--overwrite: not allowed with --resume (a resumed run continues its folder's outputs)");
        }
        OutputLock.Mode mode = resume != null ? OutputLock.Mode.RESUME : overwrite ? OutputLock.Mode.OVERWRITE : OutputLock.Mode.FRESH;
        OutputLock lock = OutputLock.acquire(out, where, mode, w -> {
            err.println("warning: " + w);
            err.flush();
        });
        try {
            return new RunFolder(lock, RunLog.toFile(lock.folder().resolve("train.log")));
        } catch (RuntimeException e) {
            lock.close();
            throw e;
        }
    }

    @Override
    public void close() {
        log.close();
        lock.close();
    }
}
