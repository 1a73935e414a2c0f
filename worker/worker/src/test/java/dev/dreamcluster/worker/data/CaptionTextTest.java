package dev.dreamcluster.worker.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dreamcluster.config.ConfigError;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The caption encoding rule: UTF-8 (BOM dropped), UTF-16 only with its BOM, anything else refused. */
class CaptionTextTest {
    @Test
    void shouldReadUtf8AndMarkedUtf16AndRefuseTheRest(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("c.txt");
        Files.write(f, " caf\u00e9, a red circle \n".getBytes(StandardCharsets.UTF_8));
        assertEquals("caf\u00e9, a red circle", CaptionText.read(f));
        Files.write(f, concat(new byte[] {(byte) 0xEF, (byte) 0xBB, (byte) 0xBF}, "caf\u00e9".getBytes(StandardCharsets.UTF_8)));
        assertEquals("caf\u00e9", CaptionText.read(f));
        Files.write(f, concat(new byte[] {(byte) 0xFF, (byte) 0xFE}, "caf\u00e9".getBytes(StandardCharsets.UTF_16LE)));
        assertEquals("caf\u00e9", CaptionText.read(f));
        Files.write(f, "caf\u00e9".getBytes(StandardCharsets.UTF_16)); // Java writes the big-endian BOM
        assertEquals("caf\u00e9", CaptionText.read(f));
        Files.write(f, "caf\u00e9".getBytes(StandardCharsets.ISO_8859_1));
        ConfigError latin1 = assertThrows(ConfigError.class, () -> CaptionText.read(f));
        assertTrue(latin1.getMessage().contains("byte 0xE9 at offset 3") && latin1.getMessage().contains(f.toString()),
                latin1.getMessage());
        Files.write(f, "cat".getBytes(StandardCharsets.UTF_16LE));
        assertTrue(assertThrows(ConfigError.class, () -> CaptionText.read(f)).getMessage().contains("NUL"));
    }

    static byte[] concat(byte[] a, byte[] b) {
        byte[] c = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, c, a.length, b.length);
        return c;
    }
}
