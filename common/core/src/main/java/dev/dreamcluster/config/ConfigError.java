package dev.dreamcluster.config;

/**
 * A rejected input. The message is one line that names the source (file and JSON path, or flag), the
 * bad value and what is allowed; the command line prints it after {@code error: } and exits with 2.
 */
public final class ConfigError extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public ConfigError(String message) {
        super(message, null, false, false);
    }

    /** {@code where: value is not allowed (allowed)}. */
    public static ConfigError invalid(String where, String value, String allowed) {
        return new ConfigError(where + ": " + value + " is not allowed (" + allowed + ")");
    }
}
