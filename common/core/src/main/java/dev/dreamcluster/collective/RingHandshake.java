package dev.dreamcluster.collective;

import java.io.EOFException;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.SocketTimeoutException;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.security.SecureRandom;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The ring's mutually authenticated connect ({@link RingWire} has the format). The acceptor serves
 * every pending connection at once from one selector, each with its own {@link #HELLO_TIMEOUT_MS}
 * deadline, so a silent, slow or garbage connection is dropped on its own and never delays or fails
 * the real neighbour's handshake; at most {@link #MAX_PENDING} connections wait at once (the oldest
 * is dropped first). The connector bounds its connect and reads the same way, so a silent impostor
 * at the right neighbour's address cannot hang it either.
 */
final class RingHandshake {
    static final long HELLO_TIMEOUT_MS = 5000;
    static final int MAX_PENDING = 32;
    private static final Logger LOG = LoggerFactory.getLogger(RingHandshake.class);
    private static final SecureRandom RANDOM = new SecureRandom();

    private RingHandshake() {}

    private static final class Pending {
        final SocketChannel ch;
        final SocketAddress from;
        final byte[] nonce = nonce();
        final ByteBuffer hello = RingWire.buffer(RingWire.HELLO);
        final long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(HELLO_TIMEOUT_MS);

        Pending(SocketChannel ch) throws IOException {
            this.ch = ch;
            this.from = ch.getRemoteAddress();
        }
    }

    /**
     * Accepts on {@code server} until the left neighbour {@code expectRank} proves the secret or
     * {@code deadline} (System.nanoTime) passes; every other connection is dropped with a warning.
     * Returns the neighbour's channel in blocking mode.
     */
    static SocketChannel acceptLeft(ServerSocketChannel server, long runId, byte[] secret, int expectRank, long deadline)
            throws IOException {
        Deque<Pending> pending = new ArrayDeque<>();
        SocketChannel winner = null;
        int dropped = 0;
        String lastDrop = null;
        server.configureBlocking(false);
        try (Selector sel = Selector.open()) {
            server.register(sel, SelectionKey.OP_ACCEPT);
            while (winner == null) {
                long now = System.nanoTime();
                if (now >= deadline) {
                    break;
                }
                long until = deadline;
                for (Pending p : pending) {
                    until = Math.min(until, p.deadline);
                }
                sel.select(Math.max(1, TimeUnit.NANOSECONDS.toMillis(until - now)));
                for (SelectionKey key : sel.selectedKeys()) {
                    if (!key.isValid()) {
                        continue;
                    }
                    if (key.isAcceptable()) {
                        for (SocketChannel ch; (ch = server.accept()) != null; ) {
                            if (pending.size() >= MAX_PENDING) {
                                Pending oldest = pending.removeFirst();
                                dropped++;
                                lastDrop = drop(oldest, "too many connections waiting for a hello");
                            }
                            Pending p = open(ch, sel);
                            if (p != null) {
                                pending.addLast(p);
                            }
                        }
                    } else if (key.isReadable() && key.attachment() instanceof Pending p && pending.contains(p)) {
                        String why;
                        try {
                            if (p.ch.read(p.hello) < 0) {
                                throw new EOFException("closed before its hello was complete");
                            }
                            if (p.hello.hasRemaining()) {
                                continue;
                            }
                            RingWire.Hello h = RingWire.parseHello(p.hello.flip());
                            RingWire.verifyHello(h, secret, runId, expectRank, p.nonce);
                            ByteBuffer reply = RingWire.reply(secret, runId, expectRank, p.nonce, h.nonce());
                            p.ch.write(reply); // 36 bytes into an empty socket buffer
                            if (reply.hasRemaining()) {
                                throw new IOException("could not send the reply at once");
                            }
                            key.cancel();
                            pending.remove(p);
                            winner = p.ch;
                            break;
                        } catch (IOException e) {
                            why = e.getMessage();
                        }
                        pending.remove(p);
                        dropped++;
                        lastDrop = drop(p, why);
                    }
                }
                sel.selectedKeys().clear();
                long t = System.nanoTime();
                for (var it = pending.iterator(); it.hasNext(); ) {
                    Pending p = it.next();
                    if (t >= p.deadline) {
                        it.remove();
                        dropped++;
                        lastDrop = drop(p, "no complete hello within " + HELLO_TIMEOUT_MS + " ms");
                    }
                }
            }
        } finally {
            for (Pending p : pending) {
                closeQuietly(p.ch);
            }
        }
        if (winner == null) {
            throw new IOException("left neighbour (rank " + expectRank + ") did not connect"
                    + (dropped == 0 ? "" : " (" + dropped + " other connections dropped, the last: " + lastDrop + ")"));
        }
        winner.configureBlocking(true); // the selector is closed, so the channel is deregistered
        winner.setOption(StandardSocketOptions.TCP_NODELAY, true);
        return winner;
    }

    /** Registers a fresh connection and sends it the challenge; null (and closed) if that fails at once. */
    private static Pending open(SocketChannel ch, Selector sel) {
        try {
            ch.configureBlocking(false);
            Pending p = new Pending(ch);
            ByteBuffer challenge = RingWire.challenge(p.nonce);
            ch.write(challenge); // 20 bytes into an empty socket buffer
            if (challenge.hasRemaining()) {
                throw new IOException("could not send the challenge at once");
            }
            ch.register(sel, SelectionKey.OP_READ, p);
            return p;
        } catch (IOException e) {
            closeQuietly(ch);
            return null;
        }
    }

    private static String drop(Pending p, String why) {
        LOG.warn("ring: dropped a connection from {}: {}", p.from, why);
        closeQuietly(p.ch);
        return p.from + ": " + why;
    }

    /**
     * Connects to the right neighbour and runs the handshake once; any failure (refused, silent,
     * wrong secret) is an IOException the caller may retry. Returns the channel in blocking mode.
     */
    static SocketChannel connectRight(InetSocketAddress to, long runId, byte[] secret, int rank, int sendBuffer, long deadline)
            throws IOException {
        SocketChannel ch = SocketChannel.open();
        try {
            ch.setOption(StandardSocketOptions.TCP_NODELAY, true);
            ch.setOption(StandardSocketOptions.SO_SNDBUF, sendBuffer);
            long stepDeadline = Math.min(deadline, System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(HELLO_TIMEOUT_MS));
            ch.socket().connect(to, (int) Math.max(1, TimeUnit.NANOSECONDS.toMillis(stepDeadline - System.nanoTime())));
            ch.configureBlocking(false);
            try (Selector sel = Selector.open()) {
                ByteBuffer challenge = RingWire.buffer(RingWire.CHALLENGE);
                transfer(ch, sel, challenge, true, stepDeadline);
                byte[] acceptorNonce = RingWire.parseChallenge(challenge.flip());
                byte[] connectorNonce = nonce();
                transfer(ch, sel, RingWire.hello(secret, runId, rank, acceptorNonce, connectorNonce), false, stepDeadline);
                ByteBuffer reply = RingWire.buffer(RingWire.REPLY);
                transfer(ch, sel, reply, true, stepDeadline);
                RingWire.verifyReply(reply.flip(), secret, runId, rank, acceptorNonce, connectorNonce);
            }
            ch.configureBlocking(true);
            return ch;
        } catch (IOException | RuntimeException e) {
            closeQuietly(ch);
            throw e instanceof IOException io ? io : new IOException(e);
        }
    }

    /** Reads or writes all of {@code b} on a non-blocking channel before {@code deadline}. */
    private static void transfer(SocketChannel ch, Selector sel, ByteBuffer b, boolean read, long deadline) throws IOException {
        SelectionKey key = ch.register(sel, read ? SelectionKey.OP_READ : SelectionKey.OP_WRITE);
        try {
            while (b.hasRemaining()) {
                int n = read ? ch.read(b) : ch.write(b);
                if (n < 0) {
                    throw new EOFException("the peer closed the connection during the handshake");
                }
                if (n == 0) {
                    long left = deadline - System.nanoTime();
                    if (left <= 0) {
                        throw new SocketTimeoutException("no handshake answer within " + HELLO_TIMEOUT_MS + " ms");
                    }
                    sel.select(Math.max(1, TimeUnit.NANOSECONDS.toMillis(left)));
                    sel.selectedKeys().clear();
                }
            }
        } finally {
            key.cancel();
            sel.selectNow(); // flushes the cancelled key so the channel can register again
        }
    }

    static byte[] nonce() {
        byte[] n = new byte[RingWire.NONCE];
        RANDOM.nextBytes(n);
        return n;
    }

    private static void closeQuietly(java.nio.channels.Channel c) {
        try {
            c.close();
        } catch (IOException ignored) {
            // best effort: the peer sees EOF either way
        }
    }
}
