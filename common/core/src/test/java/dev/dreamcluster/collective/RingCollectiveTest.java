package dev.dreamcluster.collective;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

/** The TCP ring on loopback with N = 1..4 ranks in threads: results checked against exact sums. */
class RingCollectiveTest {
    static final Duration TIMEOUT = Duration.ofSeconds(20);
    static final byte[] SECRET = "0123456789abcdef0123456789abcdef".getBytes(java.nio.charset.StandardCharsets.US_ASCII);

    /** Binds n listening channels on loopback and returns them with their addresses. */
    static List<ServerSocketChannel> servers(int n) throws IOException {
        List<ServerSocketChannel> s = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            s.add(ServerSocketChannel.open().bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0)));
        }
        return s;
    }

    static List<InetSocketAddress> addresses(List<ServerSocketChannel> s) throws IOException {
        List<InetSocketAddress> a = new ArrayList<>();
        for (ServerSocketChannel c : s) {
            a.add((InetSocketAddress) c.getLocalAddress());
        }
        return a;
    }

    /** Runs {@code body} on every rank of a fresh ring (the default frame) and waits for all of them. */
    static void onRing(int n, long runId, Consumer<Collective> body) throws Exception {
        int[] frames = new int[n];
        java.util.Arrays.fill(frames, RingCollective.FRAME_FLOATS);
        for (Throwable t : onRingWithFrames(runId, frames, body::accept)) {
            if (t instanceof Error e) {
                throw e;
            } else if (t != null) {
                throw (Exception) t;
            }
        }
    }

    /** A ring whose rank r sends frames of {@code frames[r]} floats; returns each rank's failure (null: none). */
    static List<Throwable> onRingWithFrames(long runId, int[] frames, Consumer<RingCollective> body) throws Exception {
        int n = frames.length;
        List<ServerSocketChannel> s = servers(n);
        List<InetSocketAddress> peers = addresses(s);
        ExecutorService pool = Executors.newFixedThreadPool(n);
        try {
            List<Future<?>> f = new ArrayList<>();
            for (int r = 0; r < n; r++) {
                final int rank = r;
                f.add(pool.submit(() -> {
                    try (RingCollective c = RingCollective.connect(runId, SECRET, rank, peers, s.get(rank), TIMEOUT, frames[rank])) {
                        body.accept(c);
                    }
                    return null;
                }));
            }
            List<Throwable> failed = new ArrayList<>();
            for (Future<?> x : f) {
                try {
                    x.get(60, TimeUnit.SECONDS);
                    failed.add(null);
                } catch (java.util.concurrent.ExecutionException e) {
                    failed.add(e.getCause());
                }
            }
            return failed;
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void framesOfAnySizeShouldGiveTheSameSumsAndTheProfileShouldCountThem() throws Exception {
        int len = 5 * 1024 + 7; // five full frames of 1024 floats and a partial one per segment
        List<Throwable> failed = onRingWithFrames(5, new int[] {1024, 1024, 1024}, c -> {
            float[] a = input(c.rank(), len);
            c.allReduce(a, len);
            for (int i = 0; i < len; i++) {
                assertEquals(expectedSum(3, i), a[i], "element " + i);
            }
            RingCollective.Profile p = c.profile();
            // all-reduce of 3 ranks: 2 reduce-scatter and 2 all-gather steps, each receiving one segment (+ headers)
            assertTrue(p.bytesReceived() >= 4L * len * 4 / 3, p.toString());
            assertTrue(p.reduceNanos() > 0 && p.waitNanos() > 0 && p.packNanos() > 0 && p.writeNanos() > 0, p.toString());
        });
        assertEquals(java.util.Arrays.asList(null, null, null), failed);
    }

    @Test
    void ranksWithDifferentFrameSizesShouldFailAtOnceNamingTheFrame() throws Exception {
        List<Throwable> failed = onRingWithFrames(5, new int[] {1024, 2048}, c -> c.allReduce(input(c.rank(), 8192), 8192));
        assertTrue(failed.stream().anyMatch(t -> t instanceof CollectiveException && String.valueOf(t.getMessage()).contains("unexpected frame")),
                failed.toString());
        assertThrows(IllegalArgumentException.class, () -> RingCollective.connect(5, SECRET, 0, List.of(), null, TIMEOUT, 100));
    }

    /** Rank r's input: small integers, so every float sum is exact whatever the order. */
    static float[] input(int rank, int len) {
        float[] a = new float[len];
        for (int i = 0; i < len; i++) {
            a[i] = (rank + 1) * 1000 + i % 997;
        }
        return a;
    }

    static float expectedSum(int n, int i) {
        float s = 0;
        for (int r = 0; r < n; r++) {
            s += (r + 1) * 1000 + i % 997;
        }
        return s;
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 2, 3, 4})
    void shouldAllReduceSizesNotDivisibleByTheWorld(int n) throws Exception {
        for (int len : new int[] {1, 7, 1001, 2 * RingCollective.FRAME_FLOATS + 13}) {
            onRing(n, 42, c -> {
                float[] a = input(c.rank(), len);
                c.allReduce(a, len);
                for (int i = 0; i < len; i++) {
                    assertEquals(expectedSum(n, i), a[i], "rank " + c.rank() + " element " + i + " of " + len);
                }
            });
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {2, 3, 4})
    void shouldReduceScatterAndAllGatherUnevenShards(int n) throws Exception {
        int len = 5000;
        int[] bounds = new int[n + 1];
        for (int r = 1; r <= n; r++) {
            bounds[r] = r == 1 ? 0 : Math.min(len, bounds[r - 1] + 1000 * r + 37); // rank 0 owns nothing
        }
        bounds[n] = len;
        onRing(n, 7, c -> {
            float[] a = input(c.rank(), len);
            c.reduceScatter(a, bounds);
            for (int i = bounds[c.rank()]; i < bounds[c.rank() + 1]; i++) {
                assertEquals(expectedSum(n, i), a[i]);
            }
            float[] g = new float[len];
            for (int i = bounds[c.rank()]; i < bounds[c.rank() + 1]; i++) {
                g[i] = -i;
            }
            c.allGather(g, bounds);
            for (int i = 0; i < len; i++) {
                assertEquals(-i, g[i], 0f);
            }
            float[] b = c.rank() == 1 ? input(9, 300) : new float[300];
            c.broadcast(b, 300, 1);
            assertArrayEquals(input(9, 300), b);
            c.barrier();
        });
    }

    @Test
    void shouldRefuseConnectionsThatDoNotProveTheSecret() throws Exception {
        // an intruder that knows the run id and the rank but not the secret
        byte[] wrong = "not the secret, not the secret!!".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
        intruderIsDroppedAndTheRingForms(nonceA -> RingWire.hello(wrong, 1, 0, nonceA, new byte[RingWire.NONCE]));
    }

    @Test
    void shouldRefuseAHelloOfAnotherRunEvenWithTheSecret() throws Exception {
        intruderIsDroppedAndTheRingForms(nonceA -> RingWire.hello(SECRET, 999, 0, nonceA, new byte[RingWire.NONCE]));
    }

    /** An intruder knocks at rank 1 first and answers its challenge with {@code hello}; rank 1 must drop it and accept rank 0. */
    static void intruderIsDroppedAndTheRingForms(java.util.function.Function<byte[], ByteBuffer> hello) throws Exception {
        List<ServerSocketChannel> s = servers(2);
        List<InetSocketAddress> peers = addresses(s);
        try (SocketChannel intruder = SocketChannel.open(peers.get(1))) {
            ExecutorService pool = Executors.newFixedThreadPool(2);
            try {
                Future<float[]> r1 = pool.submit(() -> run(1, 1, peers, s.get(1)));
                ByteBuffer challenge = RingWire.buffer(RingWire.CHALLENGE);
                readFully(intruder, challenge);
                intruder.write(hello.apply(RingWire.parseChallenge(challenge.flip())));
                assertEquals(-1, intruder.read(ByteBuffer.allocate(1)), "the intruder gets no reply and is disconnected");
                Future<float[]> r0 = pool.submit(() -> run(1, 0, peers, s.get(0)));
                assertEquals(3f, r0.get(30, TimeUnit.SECONDS)[0]);
                assertEquals(3f, r1.get(30, TimeUnit.SECONDS)[0]);
            } finally {
                pool.shutdownNow();
            }
        }
    }

    /**
     * The attack of issue 11: idle and garbage connections to the waiting ranks' ports before and
     * during formation. Before the handshake had its own deadlines, one idle connection held the
     * blocking hello read until the join timeout and the run failed.
     */
    @Test
    void shouldFormTheRingDespiteIdleAndGarbageConnections() throws Exception {
        int n = 3;
        List<ServerSocketChannel> s = servers(n);
        List<InetSocketAddress> peers = addresses(s);
        List<SocketChannel> noise = new ArrayList<>();
        java.util.Random random = new java.util.Random(11);
        try {
            for (int r = 0; r < n; r++) {
                noise.add(SocketChannel.open(peers.get(r))); // idle: never sends a byte
                SocketChannel garbage = SocketChannel.open(peers.get(r));
                byte[] junk = new byte[RingWire.HELLO];
                random.nextBytes(junk);
                garbage.write(ByteBuffer.wrap(junk));
                noise.add(garbage);
                SocketChannel shortHello = SocketChannel.open(peers.get(r));
                shortHello.write(ByteBuffer.wrap(new byte[] {0x52, 0x4C, 0x43, 0x44})); // the magic, then silence
                noise.add(shortHello);
            }
            long t0 = System.nanoTime();
            onRing(n, 77, c -> {
                float[] a = input(c.rank(), 1001);
                c.allReduce(a, 1001);
                for (int i = 0; i < 1001; i++) {
                    assertEquals(expectedSum(n, i), a[i]);
                }
            });
            assertTrue(System.nanoTime() - t0 < TIMEOUT.toNanos(), "the ring formed before the join timeout");
        } finally {
            for (SocketChannel c : noise) {
                c.close();
            }
        }
    }

    @Test
    void shouldFailToConnectToAnImpostorThatDoesNotKnowTheSecret() throws Exception {
        List<ServerSocketChannel> s = servers(2);
        List<InetSocketAddress> peers = addresses(s);
        ServerSocketChannel impostor = s.get(1); // listens at rank 1's address and answers without the secret
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try {
            Future<?> fake = pool.submit(() -> {
                while (true) {
                    try (SocketChannel ch = impostor.accept()) {
                        ch.write(RingWire.challenge(new byte[RingWire.NONCE]));
                        ByteBuffer hello = RingWire.buffer(RingWire.HELLO);
                        readFully(ch, hello);
                        ch.write(RingWire.buffer(RingWire.REPLY).putInt(RingWire.MAGIC).position(RingWire.REPLY).flip());
                    }
                }
            });
            // 4 s: on a loaded machine the impostor thread may be slow to answer; once it has answered, its refusal
            // is the reason named even when the deadline cuts a later attempt short
            CollectiveException e = assertThrows(CollectiveException.class,
                    () -> RingCollective.connect(3, SECRET, 0, peers, s.get(0), Duration.ofSeconds(4)));
            assertTrue(e.getMessage().contains("does not prove the run secret"), e.getMessage());
            fake.cancel(true);
        } finally {
            pool.shutdownNow();
            impostor.close();
        }
    }

    static void readFully(SocketChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            if (ch.read(b) < 0) {
                throw new java.io.EOFException();
            }
        }
    }

    static float[] run(long runId, int rank, List<InetSocketAddress> peers, ServerSocketChannel server) {
        try (Collective c = RingCollective.connect(runId, SECRET, rank, peers, server, TIMEOUT)) {
            float[] a = {rank + 1};
            c.allReduce(a, 1);
            return a;
        }
    }

    @Test
    void shouldFailEveryRankWithinTheTimeoutWhenOneDies() throws Exception {
        int n = 3;
        List<ServerSocketChannel> s = servers(n);
        List<InetSocketAddress> peers = addresses(s);
        ExecutorService pool = Executors.newFixedThreadPool(n);
        try {
            List<Future<String>> f = new ArrayList<>();
            for (int r = 0; r < n; r++) {
                final int rank = r;
                f.add(pool.submit(() -> {
                    Collective c = RingCollective.connect(5, SECRET, rank, peers, s.get(rank), Duration.ofSeconds(3));
                    float[] a = new float[100_000];
                    c.allReduce(a, a.length);
                    if (rank == 2) {
                        c.close(); // dies before the second operation
                        return "dead";
                    }
                    CollectiveException e = assertThrows(CollectiveException.class, () -> c.allReduce(a, a.length));
                    c.close();
                    return e.getMessage();
                }));
            }
            long t0 = System.nanoTime();
            for (Future<String> x : f) {
                String msg = x.get(30, TimeUnit.SECONDS);
                assertTrue(msg.equals("dead") || msg.startsWith("rank "), msg);
            }
            assertTrue(System.nanoTime() - t0 < TimeUnit.SECONDS.toNanos(10), "every survivor gave up within the timeout");
        } finally {
            pool.shutdownNow();
        }
    }
}
