package dev.dreamcluster.collective;

import java.io.IOException;

/**
 * The one error the ring's wire decoders throw: bytes that are not a valid challenge, hello, reply or
 * frame header of this run, or a hello that does not prove the run's secret. An IOException, so a bad
 * connection is handled like a broken one.
 */
public final class RingProtocolException extends IOException {
    private static final long serialVersionUID = 1L;

    public RingProtocolException(String message) {
        super(message);
    }
}
