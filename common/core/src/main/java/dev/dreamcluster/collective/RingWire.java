package dev.dreamcluster.collective;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * The ring's wire format (little-endian) and its pure decoders, kept apart from the sockets so they
 * can be fuzzed. Every message has a fixed size, so a decoder never allocates more than its fixed
 * output whatever the input; a bad input throws {@link RingProtocolException} and nothing else.
 *
 * <pre>
 * challenge (acceptor -> connector):  int magic | byte[16] acceptorNonce                               (20 B)
 * hello     (connector -> acceptor):  int magic | long runId | int rank | byte[16] connectorNonce
 *                                     | byte[32] HMAC-SHA256(secret, "DCLR hello v1" | transcript)     (64 B)
 * reply     (acceptor -> connector):  int magic | byte[32] HMAC-SHA256(secret, "DCLR reply v1" | transcript) (36 B)
 * frame:                              int magic | long runId | long seq | int floats | float[floats]  (24 + 4 floats B)
 *
 * transcript = runId | rank | acceptorNonce | connectorNonce
 * </pre>
 *
 * Both sides prove the per-run secret over both fresh nonces, so a recorded hello or reply cannot be
 * replayed, reflected or reused in another run, and the run id alone (published to every monitor) no
 * longer opens the ring.
 */
final class RingWire {
    static final int MAGIC = 0x44434C52; // "DCLR"
    static final int NONCE = 16;
    static final int TAG = 32;
    static final int CHALLENGE = 4 + NONCE;
    static final int HELLO = 4 + 8 + 4 + NONCE + TAG;
    static final int REPLY = 4 + TAG;
    static final int FRAME_HEADER = 24;
    /** Shorter secrets are refused: the run secret is 32 random bytes. */
    static final int MIN_SECRET = 16;

    private static final byte[] HELLO_LABEL = "DCLR hello v1".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
    private static final byte[] REPLY_LABEL = "DCLR reply v1".getBytes(java.nio.charset.StandardCharsets.US_ASCII);

    private RingWire() {}

    record Hello(long runId, int rank, byte[] nonce, byte[] tag) {}

    static ByteBuffer buffer(int size) {
        return ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
    }

    static ByteBuffer challenge(byte[] acceptorNonce) {
        return buffer(CHALLENGE).putInt(MAGIC).put(acceptorNonce).flip();
    }

    static ByteBuffer hello(byte[] secret, long runId, int rank, byte[] acceptorNonce, byte[] connectorNonce) {
        return buffer(HELLO).putInt(MAGIC).putLong(runId).putInt(rank).put(connectorNonce)
                .put(tag(secret, HELLO_LABEL, runId, rank, acceptorNonce, connectorNonce)).flip();
    }

    static ByteBuffer reply(byte[] secret, long runId, int rank, byte[] acceptorNonce, byte[] connectorNonce) {
        return buffer(REPLY).putInt(MAGIC).put(tag(secret, REPLY_LABEL, runId, rank, acceptorNonce, connectorNonce)).flip();
    }

    /** The acceptor's nonce from a challenge of exactly {@value #CHALLENGE} bytes. */
    static byte[] parseChallenge(ByteBuffer b) throws RingProtocolException {
        exactly(b, CHALLENGE, "challenge");
        magic(b, "challenge");
        byte[] nonce = new byte[NONCE];
        b.get(nonce);
        return nonce;
    }

    static Hello parseHello(ByteBuffer b) throws RingProtocolException {
        exactly(b, HELLO, "hello");
        magic(b, "hello");
        long runId = b.getLong();
        int rank = b.getInt();
        byte[] nonce = new byte[NONCE];
        b.get(nonce);
        byte[] tag = new byte[TAG];
        b.get(tag);
        return new Hello(runId, rank, nonce, tag);
    }

    /** Checks a decoded hello: this run, the expected neighbour, and a tag that proves the secret. */
    static void verifyHello(Hello h, byte[] secret, long runId, int expectRank, byte[] acceptorNonce) throws RingProtocolException {
        if (h.runId() != runId) {
            throw new RingProtocolException("hello of run " + h.runId() + ", not run " + runId);
        }
        if (h.rank() != expectRank) {
            throw new RingProtocolException("hello from rank " + h.rank() + ", expected the left neighbour rank " + expectRank);
        }
        byte[] want = tag(secret, HELLO_LABEL, runId, expectRank, acceptorNonce, h.nonce());
        if (!MessageDigest.isEqual(want, h.tag())) {
            throw new RingProtocolException("hello does not prove the run secret");
        }
    }

    /** Checks the acceptor's reply: it knows the secret too (else the connector is talking to an impostor). */
    static void verifyReply(ByteBuffer b, byte[] secret, long runId, int rank, byte[] acceptorNonce, byte[] connectorNonce)
            throws RingProtocolException {
        exactly(b, REPLY, "reply");
        magic(b, "reply");
        byte[] got = new byte[TAG];
        b.get(got);
        if (!MessageDigest.isEqual(tag(secret, REPLY_LABEL, runId, rank, acceptorNonce, connectorNonce), got)) {
            throw new RingProtocolException("the right neighbour's reply does not prove the run secret");
        }
    }

    /**
     * Decodes a frame header and checks it is the next frame of this run carrying exactly {@code
     * expectFloats}; the caller reads that many floats into its own fixed buffer, so the header can
     * never make it allocate.
     */
    static void checkFrameHeader(ByteBuffer b, long runId, long expectSeq, int expectFloats) throws RingProtocolException {
        exactly(b, FRAME_HEADER, "frame header");
        int magic = b.getInt();
        long run = b.getLong();
        long seq = b.getLong();
        int floats = b.getInt();
        if (magic != MAGIC || run != runId || seq != expectSeq || floats != expectFloats) {
            throw new RingProtocolException("unexpected frame from the left (magic " + Integer.toHexString(magic) + ", run " + run
                    + ", seq " + seq + ", " + floats + " floats; expected run " + runId + ", seq " + expectSeq + ", " + expectFloats + ")");
        }
    }

    static void checkSecret(byte[] secret) {
        if (secret == null || secret.length < MIN_SECRET) {
            throw new IllegalArgumentException("the ring needs a run secret of at least " + MIN_SECRET + " bytes");
        }
    }

    private static void exactly(ByteBuffer b, int size, String what) throws RingProtocolException {
        if (b.remaining() != size) {
            throw new RingProtocolException(what + " of " + b.remaining() + " bytes, expected " + size);
        }
        b.order(ByteOrder.LITTLE_ENDIAN);
    }

    private static void magic(ByteBuffer b, String what) throws RingProtocolException {
        int m = b.getInt();
        if (m != MAGIC) {
            throw new RingProtocolException(what + " with magic " + Integer.toHexString(m) + ", not a DreamCluster ring peer");
        }
    }

    static byte[] tag(byte[] secret, byte[] label, long runId, int rank, byte[] acceptorNonce, byte[] connectorNonce) {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(secret, "HmacSHA256"));
            mac.update(label);
            mac.update(buffer(12).putLong(runId).putInt(rank).array());
            mac.update(acceptorNonce);
            mac.update(connectorNonce);
            return mac.doFinal();
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("HmacSHA256 is part of every Java 17 runtime", e);
        }
    }
}
