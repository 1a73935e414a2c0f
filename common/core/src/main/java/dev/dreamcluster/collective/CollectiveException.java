package dev.dreamcluster.collective;

/** A collective could not complete: a peer vanished, timed out or sent a frame of another run or step. */
public final class CollectiveException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public CollectiveException(String message, Throwable cause) {
        super(message, cause);
    }

    public CollectiveException(String message) {
        super(message);
    }
}
