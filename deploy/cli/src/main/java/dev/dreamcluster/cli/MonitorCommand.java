package dev.dreamcluster.cli;

import akka.actor.typed.ActorSystem;
import akka.actor.typed.javadsl.Behaviors;
import dev.dreamcluster.protocol.EventSubscribers;
import dev.dreamcluster.monitoring.TerminalView;
import dev.dreamcluster.protocol.TrainingEvent;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code dreamcluster monitor}: joins as role "monitor" and prints members and training progress. */
@Command(name = "monitor", mixinStandardHelpOptions = true, description = "Watch a cluster's members and training progress (a redrawn status block when stderr is a terminal).")
final class MonitorCommand implements Callable<Integer> {
    @Option(names = "--join", required = true, paramLabel = "HOST:PORT", description = "the coordinator's cluster address")
    String join;

    @picocli.CommandLine.Mixin
    NodeAddress address;

    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @picocli.CommandLine.Mixin
    ClusterKeyFlags cluster;

    @Override
    public Integer call() throws Exception {
        ClusterKeys.NodeKeys keys = cluster.resolve();
        Nodes.HostPort seed = Nodes.hostPort(join, "--join");
        Nodes.HostPort b = address.bindAddress();
        Nodes.HostPort a = address.advertiseAddress();
        CompletableFuture<TrainingEvent.RunFinished> done = new CompletableFuture<>();
        ActorSystem<Void> system = Nodes.start(Behaviors.<Void>setup(ctx -> {
            var out = spec.commandLine().getOut();
            // on a terminal stderr shows the redrawn status block; stdout keeps every line unless it is that terminal too
            TerminalView view = TerminalView.isTerminal(2) ? new TerminalView(System.err) : null;
            boolean linesToOut = view == null || !TerminalView.isTerminal(1);
            // events only from the coordinator's node: what another member publishes on the topic is ignored
            EventSubscribers.subscribe(ctx, ctx.spawn(EventPrinter.create(linesToOut ? line -> {
                out.println(line);
                out.flush();
            } : null, view, done), "printer"), "events");
            return Behaviors.empty();
        }), "monitor", b, a, seed, keys);
        try {
            TrainingEvent.RunFinished f = done.get(7, TimeUnit.DAYS);
            return f.ok() ? 0 : 3;
        } finally {
            system.terminate();
        }
    }
}
