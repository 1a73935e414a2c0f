package dev.dreamcluster.device;

import dev.dreamcluster.config.ConfigError;
import java.util.List;
import java.util.Locale;
import java.util.function.Consumer;

/**
 * {@code --collective}: the data plane of a run. {@code ring} is the TCP ring (any device);
 * {@code nccl} needs every worker on a GPU with NCCL loadable; {@code auto} picks NCCL when every
 * worker offers it, else the ring (saying so once).
 */
public enum CollectiveKind {
    AUTO, RING, NCCL;

    public static CollectiveKind parse(String text, String where) {
        try {
            return valueOf(text.trim().toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException | NullPointerException e) {
            throw ConfigError.invalid(where, "\"" + text + "\"", "auto, ring or nccl");
        }
    }

    /**
     * The data plane the run uses. {@code why} holds, per worker, null when it can run NCCL or the
     * reason it cannot ("cpu worker", "libnccl.so.2 not found", ...).
     *
     * @param log receives the one line that says auto fell back to the ring
     * @throws ConfigError when nccl was asked for and a worker cannot run it
     */
    public CollectiveKind resolve(List<String> why, Consumer<String> log) {
        String first = why.stream().filter(w -> w != null).findFirst().orElse(null);
        return switch (this) {
            case RING -> RING;
            case NCCL -> {
                if (first != null) {
                    throw ConfigError.invalid("--collective", "nccl", "ring or auto here: worker " + why.indexOf(first)
                            + " cannot run NCCL (" + first + ")");
                }
                yield NCCL;
            }
            case AUTO -> {
                if (first == null && !why.isEmpty()) {
                    yield NCCL;
                }
                log.accept("collective auto: using the TCP ring (worker " + Math.max(0, why.indexOf(first)) + ": "
                        + (first == null ? "no workers" : first) + ")");
                yield RING;
            }
        };
    }

    @Override
    public String toString() {
        return name().toLowerCase(Locale.ROOT);
    }
}
