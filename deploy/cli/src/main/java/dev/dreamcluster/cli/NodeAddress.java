package dev.dreamcluster.cli;

import picocli.CommandLine.Option;

/** {@code --bind} and {@code --advertise} of a node that joins a cluster (worker, monitor): one definition, one parse. */
final class NodeAddress {
    @Option(names = "--bind", paramLabel = "HOST:PORT", defaultValue = "127.0.0.1:0", description = "where this node's cluster port listens")
    String bind;

    @Option(names = "--advertise", paramLabel = "HOST:PORT", description = "the cluster address peers dial (default: --bind)")
    String advertise;

    /** --bind, checked (one line naming the flag on a bad value). */
    Nodes.HostPort bindAddress() {
        return Nodes.hostPort(bind, "--bind");
    }

    /** --advertise, checked; null when not given. */
    Nodes.HostPort advertiseAddress() {
        return Nodes.hostPort(advertise, "--advertise");
    }
}
