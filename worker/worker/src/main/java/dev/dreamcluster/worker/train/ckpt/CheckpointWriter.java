package dev.dreamcluster.worker.train.ckpt;

import dev.dreamcluster.io.AtomicFiles;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Commits a folder atomically on one node: the contents go to {@code .NAME.tmp} beside it, every
 * file and folder in it is fsynced, the old folder (if any) is removed and the temporary one renamed,
 * then the parent is fsynced ({@link AtomicFiles#replaceFolder}). A crash at any point leaves either
 * the old folder, or none, or the new complete one under the real name (and at most a stale {@code
 * .tmp}, removed by the next commit or the next run's start).
 */
public final class CheckpointWriter {
    /** Writes the contents of the temporary folder it is given. */
    public interface Contents {
        void write(Path tmp) throws IOException;
    }

    private CheckpointWriter() {}

    public static void commit(Path dir, Contents contents) {
        Path abs = dir.toAbsolutePath();
        Path tmp = abs.resolveSibling("." + abs.getFileName() + ".tmp");
        try {
            AtomicFiles.deleteRecursively(tmp);
            Files.createDirectories(tmp);
            contents.write(tmp);
            AtomicFiles.replaceFolder(tmp, abs);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write checkpoint " + dir, e);
        }
    }
}
