package dev.dreamcluster.model;

/**
 * A model folder that does not match its configs: missing, unexpected or mis-shaped tensors, or a
 * broken config. The message is one line naming the file, the key and both shapes.
 */
public final class ModelError extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public ModelError(String message) {
        super(message, null, false, false);
    }
}
