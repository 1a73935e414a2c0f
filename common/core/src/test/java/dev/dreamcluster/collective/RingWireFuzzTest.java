package dev.dreamcluster.collective;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Seeded fuzzing of the ring's decoders (challenge, hello + verification, reply, frame header): random
 * bytes of random lengths and mutations of valid messages (bit flips, truncation, extension, spliced
 * fields). No input may make a decoder throw anything but RingProtocolException, accept a mutated
 * authenticated message, or allocate more than its fixed output (measured per call with the JVM's
 * per-thread allocation counter). Hangs are impossible by construction (no loops over input), and the
 * whole run is bounded by the test's iteration count.
 */
class RingWireFuzzTest {
    static final long SEED = 0x11_2026L;
    static final int ITERATIONS = 50_000;
    static final byte[] SECRET = "fuzzing secret, 32 bytes long!!!".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
    /** Generous bound for one decode: a few small arrays plus the Mac instance of a verification. */
    static final long MAX_BYTES_PER_CALL = 16 * 1024;

    interface Decoder {
        void decode(ByteBuffer b) throws RingProtocolException;
    }

    @Test
    void shouldOnlyEverThrowRingProtocolExceptionWithBoundedAllocation() {
        Random random = new Random(SEED);
        byte[] an = new byte[RingWire.NONCE];
        byte[] cn = new byte[RingWire.NONCE];
        random.nextBytes(an);
        random.nextBytes(cn);
        byte[][] valid = {
            bytes(RingWire.challenge(an)),
            bytes(RingWire.hello(SECRET, 42, 3, an, cn)),
            bytes(RingWire.reply(SECRET, 42, 3, an, cn)),
            bytes(RingWire.buffer(RingWire.FRAME_HEADER).putInt(RingWire.MAGIC).putLong(42).putLong(7).putInt(1000).flip()),
        };
        Decoder[] decoders = {
            RingWire::parseChallenge,
            b -> RingWire.verifyHello(RingWire.parseHello(b), SECRET, 42, 3, an),
            b -> RingWire.verifyReply(b, SECRET, 42, 3, an, cn),
            b -> RingWire.checkFrameHeader(b, 42, 7, 1000),
        };
        for (int d = 0; d < decoders.length; d++) {
            assertAccepts(decoders[d], valid[d]); // the fuzzer's seeds are valid messages
        }
        var threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        long tid = Thread.currentThread().getId();
        long worst = 0;
        int accepted = 0;
        for (int i = 0; i < ITERATIONS; i++) {
            boolean warm = i >= ITERATIONS / 10; // the first calls load classes and the Mac provider: not measured
            int d = random.nextInt(decoders.length);
            byte[] input = mutate(random, valid[d]);
            boolean same = java.util.Arrays.equals(input, valid[d]);
            ByteBuffer b = ByteBuffer.wrap(input);
            long before = threads.getThreadAllocatedBytes(tid);
            try {
                decoders[d].decode(b);
                accepted++;
                if (!same && d != 0) {
                    // only the challenge (a bare nonce) may change and still decode; the rest is checked or authenticated
                    fail("decoder " + d + " accepted a mutated message: " + hex(input));
                }
            } catch (RingProtocolException expected) {
                // the one allowed error
            } catch (RuntimeException e) {
                fail("decoder " + d + " threw " + e + " on " + hex(input));
            }
            if (warm) {
                worst = Math.max(worst, threads.getThreadAllocatedBytes(tid) - before);
            }
        }
        assertTrue(worst <= MAX_BYTES_PER_CALL, "a decode allocated " + worst + " bytes");
        assertTrue(accepted < ITERATIONS / 2, "mutations mostly rejected (" + accepted + " accepted)");
    }

    @Test
    void shouldRejectAFrameHeaderThatAnnouncesAHugePayload() {
        ByteBuffer b = RingWire.buffer(RingWire.FRAME_HEADER).putInt(RingWire.MAGIC).putLong(42).putLong(7).putInt(Integer.MAX_VALUE).flip();
        try {
            RingWire.checkFrameHeader(b, 42, 7, 1000);
            fail("accepted");
        } catch (RingProtocolException e) {
            assertTrue(e.getMessage().contains("2147483647 floats"), e.getMessage());
        }
    }

    private static void assertAccepts(Decoder d, byte[] input) {
        try {
            d.decode(ByteBuffer.wrap(input));
        } catch (RingProtocolException e) {
            fail("a valid message was refused: " + e.getMessage());
        }
    }

    /** Random bytes of a random length, or a valid message with flips, truncation, extension or a splice. */
    static byte[] mutate(Random r, byte[] valid) {
        switch (r.nextInt(6)) {
            case 0 -> {
                byte[] b = new byte[r.nextInt(3 * valid.length + 2)];
                r.nextBytes(b);
                return b;
            }
            case 1 -> {
                byte[] b = valid.clone();
                for (int k = 1 + r.nextInt(3); k > 0; k--) {
                    int i = r.nextInt(b.length);
                    b[i] ^= (byte) (1 << r.nextInt(8));
                }
                return b;
            }
            case 2 -> {
                return java.util.Arrays.copyOf(valid, r.nextInt(valid.length));
            }
            case 3 -> {
                byte[] b = java.util.Arrays.copyOf(valid, valid.length + 1 + r.nextInt(64));
                return b;
            }
            case 4 -> {
                byte[] b = valid.clone();
                int at = r.nextInt(b.length);
                int len = 1 + r.nextInt(Math.min(8, b.length - at));
                for (int i = at; i < at + len; i++) {
                    b[i] = (byte) (r.nextBoolean() ? 0xFF : 0x00);
                }
                return b;
            }
            default -> {
                return valid.clone(); // the unmodified message must still be accepted
            }
        }
    }

    @Test
    void shouldKeepTheSeedsValidAcrossTheMutationMix() {
        Random r = new Random(SEED);
        byte[] v = {1, 2, 3, 4};
        int unchanged = 0;
        for (int i = 0; i < 600; i++) {
            if (java.util.Arrays.equals(mutate(r, v), v)) {
                unchanged++;
            }
        }
        assertTrue(unchanged > 50 && unchanged < 200, "about a sixth of the inputs are the seed itself: " + unchanged);
        assertEquals(RingWire.HELLO, bytes(RingWire.hello(SECRET, 1, 1, new byte[16], new byte[16])).length);
    }

    static byte[] bytes(ByteBuffer b) {
        byte[] out = new byte[b.remaining()];
        b.duplicate().get(out);
        return out;
    }

    static String hex(byte[] b) {
        StringBuilder s = new StringBuilder();
        for (byte x : b) {
            s.append(String.format("%02x", x));
        }
        return s.toString();
    }
}
