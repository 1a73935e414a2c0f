package dev.dreamcluster.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.config.Json;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.function.Consumer;
import java.util.stream.Stream;

/**
 * One run per output folder. {@code <out>/.dreamcluster.lock} holds the owner's pid, host and start
 * time; it is created with {@code CREATE_NEW} (atomic on every local file system, and on NFS v3+), so
 * of two runs started into the same folder exactly one gets it. A lock whose owner is gone (same
 * host, and the pid is dead or now belongs to a process started at another time) is stale: it is
 * replaced with a warning. A lock from another host is never guessed at: the error says which
 * file to delete if that run is really gone.
 *
 * <p>Holding the lock, the folder is checked against the mode: a fresh run refuses a folder that
 * already holds a run's outputs (metrics.jsonl, checkpoints/ or final/), so metrics.jsonl is never
 * appended by two runs; {@link Mode#OVERWRITE} deletes those outputs first; {@link Mode#RESUME}
 * continues them. Then the temporary entries of interrupted writes are deleted (no live writer can
 * own them while the lock is held).
 */
public final class OutputLock implements AutoCloseable {
    public static final String FILE = ".dreamcluster.lock";
    /** What a run writes into its folder; {@link Mode#OVERWRITE} deletes exactly these. */
    static final List<String> OUTPUTS = List.of("metrics.jsonl", "checkpoints", "final", "train_config.json",
            "resolved_optimizer_config.json", "train.log");
    /** An unreadable lock younger than this may be one being written right now. */
    static final long UNREADABLE_GRACE_MS = 10_000;

    /** How a run uses an output folder that already holds outputs. */
    public enum Mode {
        /** a new run: the folder must hold no run's outputs */
        FRESH,
        /** continues from a checkpoint: the outputs stay, metrics.jsonl continues */
        RESUME,
        /** a new run that deletes the old run's outputs first */
        OVERWRITE
    }

    private final Path folder;
    private final Path file;
    private final boolean createdFolder;
    private final String token;
    private boolean released;

    private OutputLock(Path folder, boolean createdFolder, String token) {
        this.folder = folder;
        this.file = folder.resolve(FILE);
        this.createdFolder = createdFolder;
        this.token = token;
    }

    public Path folder() {
        return folder;
    }

    /**
     * Takes the lock of {@code out}, creating the folder if needed.
     *
     * @param where the flag or file and key that named the folder, for errors ({@code --out})
     * @throws ConfigError when the folder is a file, cannot be written, is used by another run or
     *     holds outputs the mode does not allow
     */
    public static OutputLock acquire(Path out, String where, Mode mode, Consumer<String> warn) {
        Path dir = out.toAbsolutePath().normalize();
        String q = Json.quote(dir.toString());
        if (Files.exists(dir) && !Files.isDirectory(dir)) {
            throw new ConfigError(where + ": " + q + " is a file (allowed: a folder, new or existing)");
        }
        boolean created = !Files.exists(dir);
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new ConfigError(where + ": cannot create " + q + ": " + reason(e) + " (allowed: a folder you can write)");
        }
        String token = ProcessHandle.current().pid() + "@" + host() + "@" + Instant.now();
        OutputLock lock = new OutputLock(dir, created, token);
        lock.create(where, q, warn, true);
        try {
            lock.checkOutputs(where, q, mode);
        } catch (RuntimeException e) {
            lock.close();
            throw e;
        }
        for (Path stale : AtomicFiles.deleteStaleTemps(dir)) {
            warn.accept("deleted " + stale + " (left by an interrupted write)");
        }
        for (Path stale : AtomicFiles.deleteStaleTemps(dir.resolve("checkpoints"))) {
            warn.accept("deleted " + stale + " (left by an interrupted checkpoint)");
        }
        return lock;
    }

    private void create(String where, String q, Consumer<String> warn, boolean mayReplace) {
        ProcessHandle self = ProcessHandle.current();
        ObjectNode n = Json.MAPPER.createObjectNode();
        n.put("pid", self.pid());
        n.put("host", host());
        n.put("started", Instant.now().toString());
        self.info().startInstant().ifPresent(t -> n.put("process_start", t.toString()));
        n.put("token", token);
        try {
            Files.write(file, (n.toPrettyString() + "\n").getBytes(StandardCharsets.UTF_8), StandardOpenOption.CREATE_NEW,
                    StandardOpenOption.WRITE, StandardOpenOption.DSYNC);
            AtomicFiles.fsyncFolder(folder);
        } catch (FileAlreadyExistsException e) {
            Owner owner = Owner.read(file);
            if (mayReplace && owner.isStale()) {
                warn.accept("replacing the stale lock " + file + " (" + owner.describe() + ", no longer running)");
                try {
                    Files.deleteIfExists(file);
                } catch (IOException io) {
                    throw new ConfigError(where + ": cannot replace the stale lock " + Json.quote(file.toString()) + ": " + reason(io));
                }
                create(where, q, warn, false);
                return;
            }
            throw new ConfigError(where + ": " + q + " is in use by another run (" + owner.describe()
                    + "); allowed: a folder no running run writes to (wait for it, choose another folder, or delete "
                    + file + " if that run is gone)");
        } catch (IOException e) {
            throw new ConfigError(where + ": cannot write in " + q + ": " + reason(e) + " (allowed: a folder you can write)");
        }
    }

    private void checkOutputs(String where, String q, Mode mode) {
        boolean finished = Files.exists(folder.resolve("final"));
        boolean started = Files.exists(folder.resolve("metrics.jsonl")) || nonEmpty(folder.resolve("checkpoints"));
        if (mode == Mode.FRESH && (finished || started)) {
            throw new ConfigError(where + ": " + q + " already holds " + (finished ? "a finished run (final/)"
                    : "a run's outputs (metrics.jsonl, checkpoints/)") + "; allowed: --resume CHECKPOINT to continue it, "
                    + "--overwrite to replace it, or a new folder");
        }
        if (mode == Mode.OVERWRITE) {
            try {
                for (String o : OUTPUTS) {
                    AtomicFiles.deleteRecursively(folder.resolve(o));
                }
                AtomicFiles.fsyncFolder(folder);
            } catch (IOException e) {
                throw new ConfigError(where + ": cannot delete the old outputs in " + q + " for --overwrite: " + reason(e));
            }
        }
    }

    private static boolean nonEmpty(Path dir) {
        if (!Files.isDirectory(dir)) {
            return false;
        }
        try (Stream<Path> s = Files.list(dir)) {
            return s.anyMatch(p -> !AtomicFiles.isTempName(p.getFileName().toString()));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * Deletes the lock (if it is still this run's). A folder this lock created that is still empty
     * is deleted too: a run that never started leaves nothing behind.
     */
    @Override
    public void close() {
        if (released) {
            return;
        }
        released = true;
        try {
            if (Files.isRegularFile(file) && token.equals(Owner.read(file).token())) {
                Files.delete(file);
            }
            if (createdFolder) {
                try (Stream<Path> s = Files.list(folder)) {
                    if (s.findAny().isEmpty()) {
                        Files.delete(folder);
                    }
                }
            }
        } catch (IOException ignored) {
            // the folder went away or became unwritable: nothing left to release
        }
    }

    static String host() {
        try {
            return InetAddress.getLocalHost().getHostName();
        } catch (IOException e) {
            return "localhost";
        }
    }

    private static String reason(IOException e) {
        if (e instanceof AccessDeniedException) {
            return "permission denied";
        }
        if (e instanceof NoSuchFileException) {
            return "no such folder";
        }
        if (e instanceof FileSystemException f && f.getReason() != null) {
            return f.getReason();
        }
        return e.getClass().getSimpleName() + (e.getMessage() == null ? "" : " " + e.getMessage());
    }

    /** What a lock file says about its owner. */
    record Owner(long pid, String host, String started, String processStart, String token, boolean unreadable, long ageMs) {
        static Owner read(Path file) {
            long age = 0;
            try {
                age = System.currentTimeMillis() - Files.getLastModifiedTime(file).toMillis();
                JsonNode n = Json.MAPPER.readTree(Files.readString(file));
                if (n == null || !n.path("pid").canConvertToLong()) {
                    return new Owner(-1, "", "", null, "", true, age);
                }
                return new Owner(n.path("pid").asLong(), n.path("host").asText(), n.path("started").asText(),
                        n.hasNonNull("process_start") ? n.get("process_start").asText() : null, n.path("token").asText(), false, age);
            } catch (IOException | RuntimeException e) {
                return new Owner(-1, "", "", null, "", true, age);
            }
        }

        /** Dead owner on this host (or a recycled pid), or a torn lock file older than the grace period. */
        boolean isStale() {
            if (unreadable) {
                return ageMs > UNREADABLE_GRACE_MS;
            }
            if (!host.equals(host())) {
                return false;
            }
            Optional<ProcessHandle> h = ProcessHandle.of(pid);
            if (h.isEmpty() || !h.get().isAlive()) {
                return true;
            }
            Optional<Instant> start = h.get().info().startInstant();
            return processStart != null && start.isPresent() && !start.get().toString().equals(processStart);
        }

        String describe() {
            return unreadable ? "unreadable lock file" : "pid " + pid + " on " + host + " since " + started;
        }
    }
}
