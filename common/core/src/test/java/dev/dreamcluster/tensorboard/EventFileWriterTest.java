package dev.dreamcluster.tensorboard;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class EventFileWriterTest {
    @TempDir
    Path tmp;

    /** The records of an event file, each CRC checked (length and data). */
    static List<byte[]> records(Path file) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        List<byte[]> out = new ArrayList<>();
        while (b.hasRemaining()) {
            byte[] len = new byte[8];
            b.get(len);
            assertEquals(EventFileWriter.maskedCrc32c(len, 0, 8), b.getInt(), "length CRC of record " + out.size());
            long n = ByteBuffer.wrap(len).order(ByteOrder.LITTLE_ENDIAN).getLong();
            byte[] data = new byte[Math.toIntExact(n)];
            b.get(data);
            assertEquals(EventFileWriter.maskedCrc32c(data, 0, data.length), b.getInt(), "data CRC of record " + out.size());
            out.add(data);
        }
        return out;
    }

    @Test
    void crc32cAndMaskMatchPublishedValues() {
        // CRC-32C check value (RFC 3720 / iSCSI): "123456789" -> 0xE3069283
        java.util.zip.CRC32C c = new java.util.zip.CRC32C();
        c.update("123456789".getBytes(StandardCharsets.US_ASCII));
        assertEquals(0xE3069283L, c.getValue());
        // every TensorFlow event file starts with the 24-byte file_version record: 18 00.. then a3 7f 4b 22
        byte[] len = {0x18, 0, 0, 0, 0, 0, 0, 0};
        assertEquals(0x224b7fa3, EventFileWriter.maskedCrc32c(len, 0, 8));
    }

    @Test
    void writesRecordsWithValidCrcsAndTheExpectedEvents() throws IOException {
        byte[] png = {(byte) 0x89, 'P', 'N', 'G', 1, 2, 3};
        Path file;
        try (EventFileWriter w = EventFileWriter.open(tmp.resolve("tb"))) {
            w.scalar("loss/log_step", 7, 0.25);
            w.image("sample_000_a cat", 7, png, 64, 32);
            file = w.file();
        }
        assertTrue(file.getFileName().toString().matches("events\\.out\\.tfevents\\.\\d+\\..+"), file.toString());
        List<byte[]> recs = records(file);
        assertEquals(3, recs.size());
        assertEquals(24, recs.get(0).length, "wall_time (9 bytes) + file_version (15 bytes), as TensorFlow writes it");
        assertTrue(new String(recs.get(0), StandardCharsets.ISO_8859_1).endsWith("brain.Event:2"));
        // Event.step = 7 (field 2 varint) and the summary value's simple_value = 0.25f
        String scalar = new String(recs.get(1), StandardCharsets.ISO_8859_1);
        assertTrue(scalar.contains("\u0010\u0007"), "step field");
        assertTrue(scalar.contains("loss/log_step"));
        byte[] quarter = ByteBuffer.allocate(5).order(ByteOrder.LITTLE_ENDIAN).put((byte) 0x15).putFloat(0.25f).array();
        assertTrue(indexOf(recs.get(1), quarter) > 0, "simple_value 0.25 as fixed32 field 2");
        assertTrue(indexOf(recs.get(2), png) > 0, "PNG bytes inside the image summary");
    }

    @Test
    void protocDecodesEveryRecord() throws Exception {
        assumeTrue(hasProtoc(), "protoc (Debian protobuf-compiler) is not installed");
        Path file;
        try (EventFileWriter w = EventFileWriter.open(tmp.resolve("tb"))) {
            w.scalar("hyperparameter/lr unet", 3, 0.5);
            w.image("sample_000_x", 3, new byte[] {1, 2, 3}, 8, 8);
            file = w.file();
        }
        List<byte[]> recs = records(file);
        String version = decodeRaw(recs.get(0));
        assertTrue(version.contains("3: \"brain.Event:2\""), version);
        String scalar = decodeRaw(recs.get(1));
        assertTrue(scalar.contains("2: 3"), scalar);
        assertTrue(scalar.contains("1: \"hyperparameter/lr unet\""), scalar);
        assertTrue(scalar.contains("2: 0x3f000000"), scalar); // 0.5f
        String image = decodeRaw(recs.get(2));
        assertTrue(image.replaceAll("\\s+", " ").contains("4 { 1: 8 2: 8 3: 3 4: \"\\001\\002\\003\" }"), image);
    }

    static boolean hasProtoc() {
        try {
            Process p = new ProcessBuilder("protoc", "--version").redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            return p.waitFor(10, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (IOException | InterruptedException e) {
            return false;
        }
    }

    /** protoc --decode_raw's text form of one message: an independent protobuf decoder. */
    static String decodeRaw(byte[] message) throws IOException, InterruptedException {
        Process p = new ProcessBuilder("protoc", "--decode_raw").redirectErrorStream(true).start();
        p.getOutputStream().write(message);
        p.getOutputStream().close();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(30, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), out);
        return out;
    }

    static int indexOf(byte[] hay, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= hay.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (hay[i + j] != needle[j]) {
                    continue outer;
                }
            }
            return i;
        }
        return -1;
    }

    @Test
    void protoVarintsMatchTheWireFormat() {
        assertArrayEquals(new byte[] {0x08, (byte) 0x96, 0x01}, new Proto().varint(1, 150).toByteArray()); // protobuf docs' example
    }
}
