package dev.dreamcluster.cli;

import dev.dreamcluster.config.ConfigError;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code dreamcluster keys}: a per-cluster CA and a node keystore for Artery's mutual TLS. */
@Command(name = "keys", mixinStandardHelpOptions = true,
        description = "Make a cluster CA (DIR/ca, keep it offline) and a node keystore (DIR/node, mount it on every node as --keys).")
final class KeysCommand implements Callable<Integer> {
    @Option(names = "--out", required = true, paramLabel = "DIR",
            description = "new folder: DIR/ca and DIR/node (with --ca: the new node folder itself)")
    Path out;

    @Option(names = "--ca", paramLabel = "CA_DIR", description = "sign a new node keystore with this existing CA (DIR/ca) instead of making a CA")
    Path ca;

    @Option(names = "--days", paramLabel = "N", defaultValue = "365", description = "validity of the node certificate (the CA: 10 years)")
    int days;

    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        if (days < 1 || days > 3650) {
            throw ConfigError.invalid("--days", Integer.toString(days), "1..3650");
        }
        var o = spec.commandLine().getOut();
        if (ca != null) {
            ClusterKeys.issueNode(ca, out, Duration.ofDays(days));
            o.println("node keystore in " + out + " (signed by " + ca + "); start nodes with --keys " + out);
        } else {
            ClusterKeys.create(out, Duration.ofDays(days));
            o.println("cluster CA in " + out.resolve("ca") + " (keep it off the nodes); node keys in " + out.resolve("node")
                    + "; start every node with --keys " + out.resolve("node"));
        }
        o.flush();
        return 0;
    }
}
