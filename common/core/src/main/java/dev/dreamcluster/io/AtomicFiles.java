package dev.dreamcluster.io;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

/**
 * Crash-safe writing. A file or folder is built under a temporary sibling name, every file in it is
 * fsynced, it is renamed onto the real name and the parent folder is fsynced, so after a crash the
 * real name holds either the old complete content or the new complete content, never a torn one.
 * Temporary names start with the real name and carry {@code .tmp}, so a later run can find and
 * delete them ({@link #deleteStaleTemps}).
 */
public final class AtomicFiles {
    private AtomicFiles() {}

    /** The temporary sibling a single file is written under before its rename. */
    public static Path tempFileFor(Path file) {
        return file.resolveSibling(file.getFileName() + ".tmp");
    }

    /** Writes {@code file} through a temporary sibling, fsync and rename, then fsyncs the folder. */
    public static void write(Path file, ByteBuffer data) throws IOException {
        Path tmp = tempFileFor(file);
        try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            while (data.hasRemaining()) {
                ch.write(data);
            }
            ch.force(true);
        }
        commit(tmp, file);
    }

    public static void write(Path file, byte[] data) throws IOException {
        write(file, ByteBuffer.wrap(data));
    }

    public static void writeString(Path file, String text) throws IOException {
        write(file, text.getBytes(StandardCharsets.UTF_8));
    }

    /**
     * Renames a complete, fsynced {@code tmp} (file or folder) onto {@code target}, replacing a file
     * target, and fsyncs the parent so the rename itself survives a crash. A folder target must not
     * exist (use {@link #replaceFolder}).
     */
    public static void commit(Path tmp, Path target) throws IOException {
        try {
            Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
        }
        fsyncFolder(target.toAbsolutePath().getParent());
    }

    /**
     * Makes the folder tree {@code tmp} durable (every file and folder fsynced) and renames it onto
     * {@code target}, deleting an older {@code target} first. Between the delete and the rename a
     * crash leaves no folder under the real name, never a partial one.
     */
    public static void replaceFolder(Path tmp, Path target) throws IOException {
        fsyncTree(tmp);
        deleteRecursively(target);
        Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
        fsyncFolder(target.toAbsolutePath().getParent());
    }

    /** fsyncs every regular file under {@code root} and then every folder, deepest first. */
    public static void fsyncTree(Path root) throws IOException {
        List<Path> all;
        try (Stream<Path> walk = Files.walk(root)) {
            all = walk.sorted(Comparator.reverseOrder()).toList();
        }
        for (Path p : all) {
            if (Files.isRegularFile(p)) {
                try (FileChannel ch = FileChannel.open(p, StandardOpenOption.WRITE)) {
                    ch.force(true);
                }
            }
        }
        for (Path p : all) {
            if (Files.isDirectory(p)) {
                fsyncFolder(p);
            }
        }
    }

    /** fsyncs a folder's entries (new names, renames, deletions). */
    public static void fsyncFolder(Path dir) {
        try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
            ch.force(true);
        } catch (IOException ignored) {
            // some platforms (Windows) cannot open folders; the file contents are fsynced regardless
        }
    }

    /** Deletes a file or folder tree if it exists (temporary folders of interrupted writes). */
    public static void deleteRecursively(Path p) throws IOException {
        if (!Files.exists(p, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            return;
        }
        try (Stream<Path> walk = Files.walk(p)) {
            for (Path q : walk.sorted(Comparator.reverseOrder()).toList()) {
                Files.delete(q);
            }
        }
    }

    /**
     * Deletes the temporary entries an interrupted write left in {@code dir}: names that start with
     * {@code .} and end with {@code .tmp} (checkpoint folders), and names containing {@code .tmp-}
     * or ending with {@code .tmp} (model folders, single files). Call it only while holding the
     * folder's {@link OutputLock}: no live writer can own them then.
     *
     * @return the entries deleted
     */
    public static List<Path> deleteStaleTemps(Path dir) {
        if (!Files.isDirectory(dir)) {
            return List.of();
        }
        try (Stream<Path> list = Files.list(dir)) {
            List<Path> stale = list.filter(p -> isTempName(p.getFileName().toString())).sorted().toList();
            for (Path p : stale) {
                deleteRecursively(p);
            }
            if (!stale.isEmpty()) {
                fsyncFolder(dir);
            }
            return stale;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot clean temporary files in " + dir, e);
        }
    }

    static boolean isTempName(String n) {
        return n.endsWith(".tmp") || n.matches(".+\\.tmp-\\d+");
    }
}
