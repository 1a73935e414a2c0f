package dev.dreamcluster.collective;

import java.io.EOFException;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import dev.dreamcluster.optim.kernel.Simd;

/**
 * A ring of TCP connections over NIO socket channels with direct buffers: rank r keeps one channel to
 * r+1 (send) and one from r-1 (receive). A helper thread sends while the calling thread receives, and
 * segments travel in frames of {@value #FRAME_FLOATS} floats, so sending and receiving overlap.
 *
 * Each connection starts with a mutually authenticated handshake ({@link RingWire}: HMAC-SHA256
 * challenge-response over the per-run secret the coordinator sends inside the TLS-protected plan), then
 * carries frames {@code int magic | long runId | long seq | int floats | data} (24 + 4*floats bytes, LE).
 *
 * A connection that does not prove the secret, belongs to another run, comes from a rank that is not
 * the left neighbour, or stays silent for {@value RingHandshake#HELLO_TIMEOUT_MS} ms is dropped on its
 * own without touching the ring ({@link RingHandshake}). Every
 * frame's sequence number must be the next one expected, so ranks that disagree on the order of
 * operations fail at once instead of mixing data. A watchdog closes the channels when an operation
 * outlives its timeout, which unblocks this rank and makes both neighbours fail too.
 */
public final class RingCollective implements Collective {
    static final int MAGIC = RingWire.MAGIC;
    /**
     * Floats of payload per frame by default: 1 MiB (docs/performance.md, "The ring collective": 64 KiB to 4 MiB measured
     * with {@code bench collective --frame}). Every rank of a ring must use the same size: a frame of
     * another size fails the header check at once.
     */
    public static final int FRAME_FLOATS = 256 * 1024;
    /** The frame sizes {@link #connect(long, byte[], int, List, ServerSocketChannel, Duration, int)} accepts. */
    public static final int MIN_FRAME_FLOATS = 1024;
    public static final int MAX_FRAME_FLOATS = 16 << 20;
    static final int HEADER = 24;
    /** Socket buffers of a few frames let the sender run ahead of the receiver's additions. */
    static final int SOCKET_BUFFER = 8 << 20;

    private final long runId;
    private final int rank;
    private final int n;
    private final SocketChannel right;
    private final SocketChannel left;
    private volatile long timeoutMs;
    private volatile String timeoutWhat = "an operation";
    private final ExecutorService sender;
    private final ScheduledExecutorService watchdog;
    private final int frameFloats;
    private final ByteBuffer sendBuf;
    private final ByteBuffer recvBuf;
    private final float[] addScratch;
    /** Where this rank's time went, summed over operations (nanoseconds; see {@link Profile}). */
    private long waitNanos;
    private long reduceNanos;
    private long packNanos;
    private long writeNanos;
    private long bytesReceived;
    private final AtomicBoolean timedOut = new AtomicBoolean();
    private long sendSeq;
    private long recvSeq;
    private volatile boolean broken;

    private RingCollective(long runId, int rank, int n, SocketChannel right, SocketChannel left, Duration timeout, int frameFloats) {
        this.frameFloats = frameFloats;
        int bytes = n == 1 ? 0 : HEADER + 4 * frameFloats;
        this.sendBuf = ByteBuffer.allocateDirect(bytes).order(ByteOrder.LITTLE_ENDIAN);
        this.recvBuf = ByteBuffer.allocateDirect(bytes).order(ByteOrder.LITTLE_ENDIAN);
        this.addScratch = Simd.ENABLED || n == 1 ? null : new float[frameFloats];
        this.runId = runId;
        this.rank = rank;
        this.n = n;
        this.right = right;
        this.left = left;
        this.timeoutMs = timeout.toMillis();
        this.sender = n == 1 ? null : Executors.newSingleThreadExecutor(r -> daemon(r, "ring-send-" + rank));
        this.watchdog = n == 1 ? null : Executors.newSingleThreadScheduledExecutor(r -> daemon(r, "ring-watchdog-" + rank));
    }

    /**
     * Where a rank's collective time went, summed since the ring was made. The receiving thread's
     * time is {@code wait} (blocked in read: the left neighbour has not sent yet, or the kernel is
     * copying) plus {@code reduce} (adding or copying the frame out of the direct buffer); the sending
     * thread's is {@code pack} (copying floats into the direct buffer) plus {@code write} (in write:
     * the kernel's copy, or waiting for the right neighbour to drain its socket).
     */
    public record Profile(long waitNanos, long reduceNanos, long packNanos, long writeNanos, long bytesReceived) {
        public static final Profile ZERO = new Profile(0, 0, 0, 0, 0);

        /** What this profile gained since {@code earlier} (an earlier read of the same ring), field by field. */
        public Profile since(Profile earlier) {
            return new Profile(waitNanos - earlier.waitNanos, reduceNanos - earlier.reduceNanos, packNanos - earlier.packNanos,
                    writeNanos - earlier.writeNanos, bytesReceived - earlier.bytesReceived);
        }

        /** The two profiles' sums, field by field. */
        public Profile plus(Profile o) {
            return new Profile(waitNanos + o.waitNanos, reduceNanos + o.reduceNanos, packNanos + o.packNanos, writeNanos + o.writeNanos,
                    bytesReceived + o.bytesReceived);
        }
    }

    /** This rank's profile so far (read it between operations: the sender's fields are written by its thread). */
    public Profile profile() {
        return new Profile(waitNanos, reduceNanos, packNanos, writeNanos, bytesReceived);
    }

    private static Thread daemon(Runnable r, String name) {
        Thread t = new Thread(r, name);
        t.setDaemon(true);
        return t;
    }

    /**
     * Joins the ring: connects to {@code peers[rank+1]} and accepts {@code peers[rank-1]} on {@code
     * server} (this rank's listening channel, bound at {@code peers[rank]}), both proving {@code secret}
     * (the run's, at least 16 bytes). Takes ownership of the server channel. Fails after {@code timeout}
     * if a neighbour does not show up; other connections are dropped without failing.
     */
    public static RingCollective connect(long runId, byte[] secret, int rank, List<InetSocketAddress> peers,
            ServerSocketChannel server, Duration timeout) {
        return connect(runId, secret, rank, peers, server, timeout, FRAME_FLOATS);
    }

    /** {@link #connect(long, byte[], int, List, ServerSocketChannel, Duration)} with frames of {@code frameFloats} floats. */
    public static RingCollective connect(long runId, byte[] secret, int rank, List<InetSocketAddress> peers,
            ServerSocketChannel server, Duration timeout, int frameFloats) {
        RingWire.checkSecret(secret);
        if (frameFloats < MIN_FRAME_FLOATS || frameFloats > MAX_FRAME_FLOATS) {
            throw new IllegalArgumentException("frame of " + frameFloats + " floats; allowed " + MIN_FRAME_FLOATS + ".." + MAX_FRAME_FLOATS);
        }
        int n = peers.size();
        if (rank < 0 || rank >= n) {
            throw new IllegalArgumentException("rank " + rank + " outside world of " + n);
        }
        if (n == 1) {
            close(server);
            return new RingCollective(runId, rank, 1, null, null, timeout, frameFloats);
        }
        long deadline = System.nanoTime() + timeout.toNanos();
        SocketChannel right = null;
        SocketChannel left = null;
        try {
            ExecutorService acceptor = Executors.newSingleThreadExecutor(r -> daemon(r, "ring-accept-" + rank));
            try {
                server.setOption(StandardSocketOptions.SO_RCVBUF, SOCKET_BUFFER);
                Future<SocketChannel> accepted = acceptor.submit(() -> RingHandshake.acceptLeft(server, runId, secret,
                        RingSchedule.mod(rank - 1, n), deadline));
                right = connectRight(peers.get((rank + 1) % n), runId, secret, rank, deadline);
                left = accepted.get(Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
            } finally {
                acceptor.shutdownNow();
            }
            return new RingCollective(runId, rank, n, right, left, timeout, frameFloats);
        } catch (Exception e) {
            close(right);
            close(left);
            Throwable cause = e instanceof ExecutionException ? e.getCause() : e;
            throw new CollectiveException("rank " + rank + ": cannot join the ring of " + n + " within " + timeout.toSeconds()
                    + " s: " + cause, cause);
        } finally {
            close(server);
        }
    }

    private static SocketChannel connectRight(InetSocketAddress to, long runId, byte[] secret, int rank, long deadline)
            throws IOException, InterruptedException {
        IOException last = null;
        IOException refused = null; // a peer that answered without the run's secret: the cause worth naming
        while (System.nanoTime() < deadline) {
            try {
                return RingHandshake.connectRight(to, runId, secret, rank, SOCKET_BUFFER, deadline);
            } catch (IOException e) {
                last = e;
                if (e instanceof RingProtocolException && refused == null) {
                    refused = e;
                }
                Thread.sleep(20); // the right neighbour may not listen yet
            }
        }
        // the deadline may cut a later attempt short (a timeout): an impostor's answer, once seen, stays the reason
        IOException why = refused != null ? refused : last;
        throw new IOException("no connection to " + to + (why == null ? "" : ": " + why.getMessage())
                + (why != last && last != null ? " (last attempt: " + last.getMessage() + ")" : ""), why);
    }

    /** A fresh run secret: 32 bytes from SecureRandom, base64 (what RunPlan carries). */
    public static String newSecret() {
        byte[] b = new byte[32];
        new java.security.SecureRandom().nextBytes(b);
        return java.util.Base64.getEncoder().encodeToString(b);
    }

    /** The bytes of a base64 run secret; IllegalArgumentException if it is not base64 of at least 16 bytes. */
    public static byte[] decodeSecret(String base64) {
        byte[] b = java.util.Base64.getDecoder().decode(base64 == null ? "" : base64);
        RingWire.checkSecret(b);
        return b;
    }

    /** "host:port" strings (rank order) as socket addresses, as the coordinator and the launchers pass them. */
    public static List<InetSocketAddress> parsePeers(List<String> peers) {
        List<InetSocketAddress> out = new java.util.ArrayList<>(peers.size());
        for (String p : peers) {
            int colon = p.lastIndexOf(':');
            if (colon <= 0) {
                throw new IllegalArgumentException("peer address must be host:port, got " + p);
            }
            out.add(new InetSocketAddress(p.substring(0, colon), Integer.parseInt(p.substring(colon + 1))));
        }
        return out;
    }

    @Override
    public int rank() {
        return rank;
    }

    @Override
    public int worldSize() {
        return n;
    }

    @Override
    public void reduceScatter(float[] data, int[] bounds) {
        RingSchedule.check(bounds, n, data.length);
        for (int s = 0; s < n - 1; s++) {
            int send = RingSchedule.reduceScatterSend(rank, s, n);
            int recv = RingSchedule.reduceScatterRecv(rank, s, n);
            exchange(data, bounds[send], bounds[send + 1] - bounds[send], bounds[recv], bounds[recv + 1] - bounds[recv], true);
        }
    }

    @Override
    public void allGather(float[] data, int[] bounds) {
        RingSchedule.check(bounds, n, data.length);
        for (int s = 0; s < n - 1; s++) {
            int send = RingSchedule.allGatherSend(rank, s, n);
            int recv = RingSchedule.allGatherRecv(rank, s, n);
            exchange(data, bounds[send], bounds[send + 1] - bounds[send], bounds[recv], bounds[recv + 1] - bounds[recv], false);
        }
    }

    @Override
    public void allReduce(float[] data, int len) {
        int[] bounds = RingSchedule.evenBounds(len, n);
        reduceScatter(data, bounds);
        allGather(data, bounds);
    }

    @Override
    public void broadcast(float[] data, int len, int root) {
        if (n == 1) {
            return;
        }
        // the data travels root -> root+1 -> ... -> root-1; each rank forwards what it received
        int pos = RingSchedule.mod(rank - root, n);
        if (pos > 0) {
            exchange(data, 0, 0, 0, len, false);
        }
        if (pos < n - 1) {
            exchange(data, 0, len, 0, 0, false);
        }
    }

    @Override
    public void barrier() {
        allReduce(new float[1], 1);
    }

    @Override
    public void setTimeout(Duration timeout, String what) {
        this.timeoutMs = timeout.toMillis();
        this.timeoutWhat = what;
    }

    /** Sends data[sOff, +sLen) right while receiving rLen floats from the left into data[rOff..] (added or copied). */
    private void exchange(float[] data, int sOff, int sLen, int rOff, int rLen, boolean add) {
        if (broken) {
            throw new CollectiveException("rank " + rank + ": the ring is broken by an earlier failure");
        }
        ScheduledFuture<?> alarm = watchdog.schedule(this::expire, timeoutMs, TimeUnit.MILLISECONDS);
        Future<long[]> sent = sLen > 0 ? sender.submit(() -> sendSegment(data, sOff, sLen)) : null;
        try {
            receiveSegment(data, rOff, rLen, add);
            if (sent != null) {
                long[] spent = sent.get(); // the sender's times travel back through the future: no shared counters
                packNanos += spent[0];
                writeNanos += spent[1];
            }
        } catch (IOException | ExecutionException e) {
            broken = true;
            close();
            Throwable cause = e instanceof ExecutionException ? e.getCause() : e;
            throw new CollectiveException(timedOut.get()
                    ? "rank " + rank + ": collective timed out after " + timeoutMs + " ms, the bound for " + timeoutWhat
                            + " (a neighbour of rank " + rank + " stalled or died)"
                    : "rank " + rank + ": collective failed: " + cause, cause);
        } catch (InterruptedException e) {
            broken = true;
            close();
            Thread.currentThread().interrupt();
            throw new CollectiveException("rank " + rank + ": interrupted during a collective", e);
        } finally {
            alarm.cancel(false);
        }
    }

    private void expire() {
        timedOut.set(true);
        close(right);
        close(left);
    }

    /** Sends data[off, +len) in frames; returns {pack, write} nanoseconds. */
    private long[] sendSegment(float[] data, int off, int len) throws IOException {
        long pack = 0;
        long write = 0;
        for (int done = 0; done < len; ) {
            int k = Math.min(frameFloats, len - done);
            long t0 = System.nanoTime();
            sendBuf.clear();
            sendBuf.putInt(MAGIC).putLong(runId).putLong(sendSeq++).putInt(k);
            sendBuf.asFloatBuffer().put(data, off + done, k);
            sendBuf.position(HEADER + 4 * k).flip();
            long t1 = System.nanoTime();
            while (sendBuf.hasRemaining()) {
                right.write(sendBuf);
            }
            write += System.nanoTime() - t1;
            pack += t1 - t0;
            done += k;
        }
        return new long[] {pack, write};
    }

    private void receiveSegment(float[] data, int off, int len, boolean add) throws IOException {
        for (int done = 0; done < len; ) {
            int k = Math.min(frameFloats, len - done);
            long t0 = System.nanoTime();
            recvBuf.clear().limit(HEADER);
            readFully(recvBuf);
            RingWire.checkFrameHeader(recvBuf.flip(), runId, recvSeq, k);
            recvSeq++;
            recvBuf.clear().limit(4 * k);
            readFully(recvBuf);
            recvBuf.flip();
            long t1 = System.nanoTime();
            if (add && Simd.ENABLED) {
                RingVectors.addInto(data, off + done, recvBuf, k); // straight from the direct buffer: no copy
            } else if (add) {
                recvBuf.asFloatBuffer().get(addScratch, 0, k); // bulk copy out, then a loop that vectorises
                final int base = off + done;
                for (int i = 0; i < k; i++) {
                    data[base + i] += addScratch[i];
                }
            } else {
                recvBuf.asFloatBuffer().get(data, off + done, k);
            }
            reduceNanos += System.nanoTime() - t1;
            waitNanos += t1 - t0;
            bytesReceived += HEADER + 4L * k;
            done += k;
        }
    }

    private void readFully(ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            if (left.read(b) < 0) {
                throw new EOFException("rank " + RingSchedule.mod(rank - 1, n) + " closed the connection");
            }
        }
    }

    @Override
    public void close() {
        close(right);
        close(left);
        if (sender != null) {
            sender.shutdownNow();
        }
        if (watchdog != null) {
            watchdog.shutdownNow();
        }
    }

    private static void close(java.nio.channels.Channel c) {
        if (c != null) {
            try {
                c.close();
            } catch (IOException ignored) {
                // closing is best effort: the peer sees EOF either way
            }
        }
    }
}
