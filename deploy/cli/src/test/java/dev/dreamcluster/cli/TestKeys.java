package dev.dreamcluster.cli;

import java.nio.file.Path;
import java.time.Duration;

/** Cluster keys for tests that start their own nodes: a fresh CA and node store under {@code dir}; returns the node folder. */
final class TestKeys {
    private TestKeys() {}

    static synchronized String node(Path dir) {
        Path keys = dir.resolve("keys");
        if (!java.nio.file.Files.isDirectory(keys.resolve("node"))) {
            try {
                ClusterKeys.create(keys, Duration.ofDays(1));
            } catch (java.io.IOException | java.security.GeneralSecurityException e) {
                throw new IllegalStateException("cannot make test keys in " + keys, e);
            }
        }
        return keys.resolve("node").toString();
    }
}
