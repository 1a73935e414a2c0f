package dev.dreamcluster.worker.train;

import dev.dreamcluster.model.DiffusersFolder;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.stream.Stream;

/**
 * Commits a folder atomically on one node: the contents go to {@code .NAME.tmp} beside it, every
 * file and folder in it is fsynced, the old folder (if any) is removed and the temporary one renamed,
 * then the parent is fsynced. A crash at any point leaves either the old folder, or none, or the new
 * complete one under the real name (and at most a stale {@code .tmp}, removed by the next commit).
 */
final class CheckpointWriter {
    /** Writes the contents of the temporary folder it is given. */
    interface Contents {
        void write(Path tmp) throws IOException;
    }

    private CheckpointWriter() {}

    static void commit(Path dir, Contents contents) {
        Path abs = dir.toAbsolutePath();
        Path tmp = abs.resolveSibling("." + abs.getFileName() + ".tmp");
        try {
            DiffusersFolder.deleteRecursively(tmp);
            Files.createDirectories(tmp);
            contents.write(tmp);
            fsyncTree(tmp);
            DiffusersFolder.deleteRecursively(abs);
            try {
                Files.move(tmp, abs, StandardCopyOption.ATOMIC_MOVE);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, abs);
            }
            fsync(abs.getParent());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write checkpoint " + dir, e);
        }
    }

    /** fsync of every regular file, then every folder, deepest first (so names reach the disk after data). */
    static void fsyncTree(Path root) throws IOException {
        try (Stream<Path> all = Files.walk(root)) {
            for (Path p : all.sorted((a, b) -> b.getNameCount() - a.getNameCount()).toList()) {
                fsync(p);
            }
        }
    }

    private static void fsync(Path p) {
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.READ)) {
            ch.force(true);
        } catch (IOException ignored) {
            // some file systems refuse to open folders for reading; file data was forced above
        }
    }
}
