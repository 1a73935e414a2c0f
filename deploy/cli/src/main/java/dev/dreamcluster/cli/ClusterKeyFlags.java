package dev.dreamcluster.cli;

import dev.dreamcluster.config.ConfigError;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/**
 * {@code --keys DIR} / {@code --insecure} of every cluster node (coordinator, worker, monitor).
 * Secure by default: without keys a node refuses to start, because plain Artery lets anyone who can
 * reach the port join, publish events and stop the run.
 */
final class ClusterKeyFlags {
    @Option(names = "--keys", paramLabel = "DIR", defaultValue = "${env:DREAMCLUSTER_KEYS}",
            description = "node key folder made by 'dreamcluster keys' (DIR/node; default: $DREAMCLUSTER_KEYS)")
    Path keys;

    @Option(names = "--insecure", description = "plain TCP, no authentication: only on a network where every host is trusted")
    boolean insecure;

    /** The node's keys, or null with --insecure; a ConfigError (exit 2) when neither is given or the keys are bad. */
    ClusterKeys.NodeKeys resolve() {
        if (keys != null && insecure) {
            throw new ConfigError("--insecure: cannot be combined with --keys " + keys);
        }
        if (keys != null) {
            return ClusterKeys.load(keys, "--keys");
        }
        if (!insecure) {
            throw new ConfigError("--keys: required: a node key folder (make one with 'dreamcluster keys --out DIR' and pass"
                    + " --keys DIR/node on every node), or --insecure on a network where every host is trusted");
        }
        System.err.println("warning: --insecure: the cluster port accepts any process that can reach it (no TLS, no authentication)");
        return null;
    }
}
