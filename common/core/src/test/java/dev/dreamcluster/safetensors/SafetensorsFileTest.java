package dev.dreamcluster.safetensors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsFileTest {
    @Test
    void shouldRoundTripFp32Exactly(@TempDir Path dir) {
        Map<String, SafetensorsFile.Entry> t = new LinkedHashMap<>();
        t.put("a.weight", new SafetensorsFile.Entry(new long[] {2, 3}, new float[] {1, -2, 3.5f, Float.MIN_VALUE, -0f, 1e30f}));
        t.put("b.bias", new SafetensorsFile.Entry(new long[] {1}, new float[] {42}));
        Path f = dir.resolve("m.safetensors");
        SafetensorsFile.write(f, t, DType.F32, Map.of("format", "pt"));
        SafetensorsFile r = SafetensorsFile.open(f);
        assertEquals(2, r.tensors().size());
        assertEquals("pt", r.metadata().get("format"));
        assertArrayEquals(t.get("a.weight").values(), r.readFloats("a.weight"));
        assertArrayEquals(new long[] {2, 3}, r.tensors().get("a.weight").shape());
        assertEquals(0, (8 + headerLength(f)) % 8, "data section is 8-byte aligned");
    }

    static long headerLength(Path f) {
        try {
            return ByteBuffer.wrap(Files.readAllBytes(f), 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    @Test
    void shouldRoundTripHalvesWithRoundToNearestEven(@TempDir Path dir) {
        float[] v = {0f, -0f, 1f, 65504f, 70000f, 1e-8f, 6.1035156e-5f, 5.9604645e-8f, 0.1f, Float.NaN, Float.NEGATIVE_INFINITY};
        Path f = dir.resolve("h.safetensors");
        SafetensorsFile.write(f, Map.of("x", new SafetensorsFile.Entry(new long[] {v.length}, v)), DType.F16, null);
        float[] back = SafetensorsFile.open(f).readFloats("x");
        assertEquals(0f, back[0]);
        assertEquals(Float.floatToRawIntBits(-0f), Float.floatToRawIntBits(back[1]));
        assertEquals(1f, back[2]);
        assertEquals(65504f, back[3]);
        assertEquals(Float.POSITIVE_INFINITY, back[4]);
        assertEquals(0f, back[5]); // below half the smallest subnormal
        assertEquals(6.1035156e-5f, back[6]);
        assertEquals(5.9604645e-8f, back[7]);
        assertEquals(0.0999755859375f, back[8]);
        assertEquals(true, Float.isNaN(back[9]));
        assertEquals(Float.NEGATIVE_INFINITY, back[10]);
        // every half value survives half -> float -> half
        for (int h = 0; h < 0x10000; h++) {
            float x = Half.halfToFloat((short) h);
            if (!Float.isNaN(x)) {
                assertEquals(h, Half.floatToHalf(x) & 0xFFFF, "half bits " + h);
            }
        }
        // ties go to even: 1 + 2^-11 is halfway between 1 and 1 + 2^-10
        assertEquals(0x3C00, Half.floatToHalf(1f + 0x1p-11f) & 0xFFFF);
        assertEquals(0x3C02, Half.floatToHalf(1f + 3 * 0x1p-11f) & 0xFFFF);
        assertEquals(0x3F80, Half.floatToBf16(1f + 0x1p-8f) & 0xFFFF);
        assertEquals(1.0078125f, Half.bf16ToFloat(Half.floatToBf16(1.0078125f)));
    }

    @Test
    void shouldRejectTruncatedOrInconsistentFiles(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("bad.safetensors");
        String header = "{\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,12]}}";
        ByteBuffer b = ByteBuffer.allocate(8 + header.length() + 12).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(header.length()).put(header.getBytes(StandardCharsets.UTF_8));
        Files.write(f, b.array());
        dev.dreamcluster.model.ModelError e = assertThrows(dev.dreamcluster.model.ModelError.class, () -> SafetensorsFile.open(f));
        assertEquals(true, e.getMessage().contains("needs 16 bytes"), e.getMessage());
        Files.write(f, new byte[] {1, 2, 3});
        assertThrows(dev.dreamcluster.model.ModelError.class, () -> SafetensorsFile.open(f));
    }

    /** Byte ranges must tile the data section, as the reference library checks: overlaps, holes and trailing bytes are refused. */
    @Test
    void shouldRejectOverlappingRangesHolesAndTrailingBytes(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("tiles.safetensors");
        String ok = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}";
        Files.write(f, SafetensorsFuzzTest.withHeader(ok, 16));
        assertEquals(2, SafetensorsFile.open(f).tensors().size());
        String overlap = ok.replace("[8,16]", "[4,12]");
        Files.write(f, SafetensorsFuzzTest.withHeader(overlap, 16));
        String m = assertThrows(dev.dreamcluster.model.ModelError.class, () -> SafetensorsFile.open(f)).getMessage();
        assertTrue(m.contains(f.toString()) && m.contains("tensor b") && m.contains("overlaps tensor a"), m);
        String hole = ok.replace("[8,16]", "[12,20]");
        Files.write(f, SafetensorsFuzzTest.withHeader(hole, 20));
        m = assertThrows(dev.dreamcluster.model.ModelError.class, () -> SafetensorsFile.open(f)).getMessage();
        assertTrue(m.contains("bytes [8, 12) before tensor b belong to no tensor"), m);
        Files.write(f, SafetensorsFuzzTest.withHeader(ok, 20));
        m = assertThrows(dev.dreamcluster.model.ModelError.class, () -> SafetensorsFile.open(f)).getMessage();
        assertTrue(m.contains("the last 4 bytes") && m.contains("after tensor b"), m);
    }
}
