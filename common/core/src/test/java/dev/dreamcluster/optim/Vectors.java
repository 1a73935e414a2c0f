package dev.dreamcluster.optim;

import com.fasterxml.jackson.databind.JsonNode;
import dev.dreamcluster.config.Json;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;

/** The reference vectors in {@code shared/reference/optim-vectors} (see its manifest.json). */
final class Vectors {
    static final Path DIR = sharedDir().resolve("reference").resolve("optim-vectors");
    static final JsonNode MANIFEST = Json.readObject(DIR.resolve("manifest.json"), "manifest.json");

    private Vectors() {}

    static Path sharedDir() {
        String p = System.getProperty("dreamcluster.shared");
        Path dir = p != null ? Path.of(p) : Path.of("..", "..", "..", "shared");
        if (!Files.isDirectory(dir)) {
            dir = Path.of("..", "..", "..", "shared");
        }
        return dir.toAbsolutePath().normalize();
    }

    static float[] f32(String file) {
        ByteBuffer b = ByteBuffer.wrap(bytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        float[] out = new float[b.remaining() / 4];
        b.asFloatBuffer().get(out);
        return out;
    }

    static byte[] u8(String file) {
        return bytes(file);
    }

    static byte[] bytes(String file) {
        try {
            return Files.readAllBytes(DIR.resolve(file));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static int bits(JsonNode hex) {
        return Integer.parseUnsignedInt(hex.asText().substring(2), 16);
    }
}
