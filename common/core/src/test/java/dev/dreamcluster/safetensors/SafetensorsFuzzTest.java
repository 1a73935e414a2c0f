package dev.dreamcluster.safetensors;

import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.dreamcluster.model.ModelError;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Seeded fuzzing of the safetensors header parser: mutated valid files (bit flips, truncation,
 * header lengths such as 2^62 and -8), random JSON headers with hostile shapes and offsets, and
 * random bytes. No input may make {@link SafetensorsFile#open} (or reading an accepted tensor) throw
 * anything but {@link ModelError}, hang, or allocate much more than the file's size.
 */
class SafetensorsFuzzTest {
    /** The first cases load classes and warm the JIT: their allocations are not the parser's. */
    static final int WARMUP = 200;
    static final int CASES = 2000;
    static final long SEED = 0x5AFE7E45L;

    @Test
    void shouldOnlyEverThrowModelError(@TempDir Path dir) throws Exception {
        Map<String, SafetensorsFile.Entry> t = new LinkedHashMap<>();
        t.put("a.weight", new SafetensorsFile.Entry(new long[] {4, 3}, new float[12]));
        t.put("b.bias", new SafetensorsFile.Entry(new long[] {5}, new float[] {1, 2, 3, 4, 5}));
        t.put("c", new SafetensorsFile.Entry(new long[] {0, 7}, new float[0]));
        Path valid = dir.resolve("valid.safetensors");
        SafetensorsFile.write(valid, t, DType.F16, Map.of("format", "pt"));
        byte[] seedFile = Files.readAllBytes(valid);
        Path f = dir.resolve("fuzz.safetensors");
        com.sun.management.ThreadMXBean mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        assertTimeoutPreemptively(Duration.ofSeconds(120), () -> {
            SplittableRandom rnd = new SplittableRandom(SEED);
            int accepted = 0;
            for (int i = 0; i < CASES; i++) {
                byte[] input = mutate(rnd, seedFile, i);
                Files.write(f, input);
                long before = mx.getThreadAllocatedBytes(Thread.currentThread().getId());
                try {
                    SafetensorsFile s = SafetensorsFile.open(f);
                    for (TensorInfo ti : s.tensors().values()) {
                        if (ti.dtype() != null) {
                            s.readFloats(ti.name());
                        }
                    }
                    accepted++;
                } catch (ModelError expected) {
                    assertTrue(expected.getMessage().startsWith(f.toString()), expected.getMessage());
                } catch (Throwable e) {
                    fail("case " + i + " (" + input.length + " bytes) threw " + e, e);
                }
                long allocated = mx.getThreadAllocatedBytes(Thread.currentThread().getId()) - before;
                // floats of every tensor (2x an f16 file), Jackson's tree (~tens of bytes per header byte), slack
                long bound = 64L * input.length + (4L << 20);
                assertTrue(i < WARMUP || allocated < bound, "case " + i + ": " + allocated + " bytes allocated for a " + input.length + "-byte file");
            }
            assertTrue(accepted > 0 && accepted < CASES, "the mutations reach both outcomes: " + accepted + " accepted");
        });
    }

    /** One fuzz input: mostly mutations of a valid file, some generated headers, some noise. */
    static byte[] mutate(SplittableRandom rnd, byte[] valid, int i) {
        switch (i % 6) {
            case 0 -> {
                byte[] b = valid.clone();
                for (int k = rnd.nextInt(1, 8); k > 0; k--) {
                    b[rnd.nextInt(b.length)] ^= (byte) (1 << rnd.nextInt(8));
                }
                return b;
            }
            case 1 -> {
                return java.util.Arrays.copyOf(valid, rnd.nextInt(valid.length + 1));
            }
            case 2 -> {
                byte[] b = valid.clone();
                long[] lengths = {0, 1, 2, 7, -1, -8, 1L << 62, Long.MAX_VALUE, Long.MIN_VALUE, b.length, b.length - 8,
                    b.length - 7, 100L << 20, (100L << 20) + 1, rnd.nextLong()};
                ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putLong(0, lengths[rnd.nextInt(lengths.length)]);
                return b;
            }
            case 3, 4 -> {
                return withHeader(randomHeader(rnd), rnd.nextInt(0, 64));
            }
            default -> {
                byte[] b = new byte[rnd.nextInt(0, 256)];
                rnd.nextBytes(b);
                return b;
            }
        }
    }

    static byte[] withHeader(String header, int dataBytes) {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(h.length).put(h);
        return b.array();
    }

    static final String[] NUMBERS = {"0", "1", "-1", "4", "12", "63", "1.5", "1e400", "-1e400", "9223372036854775807",
        "9223372036854775808", "-9223372036854775808", "4294967296", "4611686018427387904", "18446744073709551616",
        "1e18", "\"4\"", "null", "true", "[]", "{}"};
    static final String[] DTYPES = {"\"F32\"", "\"F16\"", "\"BF16\"", "\"I64\"", "\"\"", "1", "null", "[\"F32\"]"};

    static String randomHeader(SplittableRandom rnd) {
        StringBuilder s = new StringBuilder("{");
        int n = rnd.nextInt(0, 5);
        for (int k = 0; k < n; k++) {
            if (k > 0) {
                s.append(',');
            }
            if (rnd.nextInt(8) == 0) {
                s.append("\"__metadata__\":").append(rnd.nextBoolean() ? "{\"format\":\"pt\"}" : NUMBERS[rnd.nextInt(NUMBERS.length)]);
                continue;
            }
            s.append("\"t").append(rnd.nextInt(3)).append("\":");
            if (rnd.nextInt(10) == 0) {
                s.append(NUMBERS[rnd.nextInt(NUMBERS.length)]);
                continue;
            }
            s.append("{\"dtype\":").append(DTYPES[rnd.nextInt(DTYPES.length)]).append(",\"shape\":[");
            int dims = rnd.nextInt(0, rnd.nextInt(10) == 0 ? 40 : 4);
            for (int d = 0; d < dims; d++) {
                s.append(d > 0 ? "," : "").append(rnd.nextInt(3) == 0 ? NUMBERS[rnd.nextInt(NUMBERS.length)] : rnd.nextInt(0, 5));
            }
            s.append("],\"data_offsets\":[");
            int offs = rnd.nextInt(8) == 0 ? rnd.nextInt(0, 4) : 2;
            for (int d = 0; d < offs; d++) {
                s.append(d > 0 ? "," : "").append(rnd.nextInt(3) == 0 ? NUMBERS[rnd.nextInt(NUMBERS.length)] : rnd.nextInt(0, 80));
            }
            s.append("]}");
        }
        if (rnd.nextInt(12) == 0) {
            s.setLength(rnd.nextInt(s.length() + 1)); // cut mid-JSON
        } else {
            s.append('}');
        }
        return s.toString();
    }
}
