package dev.dreamcluster.plan;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * SHA-256 of files. Large files (weights) are hashed once and the digest cached beside the file as
 * {@code .NAME.sha256} ("size mtime-ms hex"), valid while size and modification time are unchanged,
 * so a 4 GB model is not re-read at every start (SHA-256 runs at ~0.5-1 GB/s on one core). A folder
 * that cannot be written just goes uncached.
 */
public final class ContentDigest {
    /** Files at least this large get a cache entry. */
    static final long CACHE_FROM_BYTES = 1 << 20;

    private ContentDigest() {}

    public static String sha256(byte[] bytes) {
        return HexFormat.of().formatHex(digest().digest(bytes));
    }

    public static String sha256(String text) {
        return sha256(text.getBytes(StandardCharsets.UTF_8));
    }

    /** The file's SHA-256, from its cache entry when size and mtime still match. */
    public static String sha256(Path file) {
        try {
            long size = Files.size(file);
            long mtime = Files.getLastModifiedTime(file).toMillis();
            Path cache = file.resolveSibling("." + file.getFileName() + ".sha256");
            if (size >= CACHE_FROM_BYTES && Files.isRegularFile(cache)) {
                String[] f = Files.readString(cache, StandardCharsets.US_ASCII).trim().split(" ");
                if (f.length == 3 && f[0].equals(Long.toString(size)) && f[1].equals(Long.toString(mtime)) && f[2].length() == 64) {
                    return f[2];
                }
            }
            MessageDigest md = digest();
            byte[] buf = new byte[1 << 20];
            try (InputStream in = Files.newInputStream(file)) {
                for (int n; (n = in.read(buf)) > 0; ) {
                    md.update(buf, 0, n);
                }
            }
            String hex = HexFormat.of().formatHex(md.digest());
            if (size >= CACHE_FROM_BYTES) {
                writeCache(cache, size + " " + mtime + " " + hex + "\n");
            }
            return hex;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file, e);
        }
    }

    private static void writeCache(Path cache, String line) {
        Path tmp = cache.resolveSibling(cache.getFileName() + ".tmp-" + ProcessHandle.current().pid());
        try {
            Files.writeString(tmp, line, StandardCharsets.US_ASCII);
            Files.move(tmp, cache, java.nio.file.StandardCopyOption.REPLACE_EXISTING, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            try {
                Files.deleteIfExists(tmp);
            } catch (IOException ignored) {
                // read-only folder: nothing was written
            }
        }
    }

    private static MessageDigest digest() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
