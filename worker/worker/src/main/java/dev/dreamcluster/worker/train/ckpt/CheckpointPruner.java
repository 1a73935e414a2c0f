package dev.dreamcluster.worker.train.ckpt;

import dev.dreamcluster.io.AtomicFiles;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * {@code keep_last_n_checkpoints}: after checkpoint {@code step-S} is committed, keeps it and the
 * N-1 highest-numbered checkpoints below S, deleting older ones. Checkpoints above S (left by a run
 * that was later resumed from an earlier checkpoint) are never touched. A checkpoint is first
 * renamed to a temporary name ({@code .step-N.del.tmp}) and then deleted, so a crash mid-delete
 * never leaves a partial folder under a real name; the next run's start deletes the remains.
 */
public final class CheckpointPruner {
    public static final Pattern NAME = Pattern.compile("step-(\\d+)");

    private CheckpointPruner() {}

    /** @param keep checkpoints to keep, including {@code committed}; null keeps all */
    public static List<Path> prune(Path committed, Integer keep) {
        if (keep == null) {
            return List.of();
        }
        Path dir = committed.toAbsolutePath().getParent();
        long current = stepOf(committed);
        try (Stream<Path> list = Files.list(dir)) {
            List<Path> older = list.filter(p -> stepOf(p) >= 0 && stepOf(p) < current && Files.isDirectory(p))
                    .sorted((a, b) -> Long.compare(stepOf(b), stepOf(a)))
                    .toList();
            List<Path> doomed = older.subList(Math.min(older.size(), Math.max(0, keep - 1)), older.size());
            for (Path p : doomed) {
                Path tmp = p.resolveSibling("." + p.getFileName() + ".del.tmp");
                AtomicFiles.deleteRecursively(tmp);
                Files.move(p, tmp, StandardCopyOption.ATOMIC_MOVE);
            }
            AtomicFiles.fsyncFolder(dir);
            for (Path p : doomed) {
                AtomicFiles.deleteRecursively(p.resolveSibling("." + p.getFileName() + ".del.tmp"));
            }
            return doomed;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot prune old checkpoints in " + dir, e);
        }
    }

    /** The step of a {@code step-N} folder name, or -1 for any other name. */
    public static long stepOf(Path p) {
        Matcher m = NAME.matcher(p.getFileName().toString());
        if (!m.matches() || m.group(1).length() > 18) {
            return -1;
        }
        return Long.parseLong(m.group(1));
    }
}
