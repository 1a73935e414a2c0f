package dev.dreamcluster.cli;

import akka.actor.typed.ActorSystem;
import akka.actor.typed.javadsl.Behaviors;
import dev.dreamcluster.protocol.EventSubscribers;
import dev.dreamcluster.protocol.TrainingEvent;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code dreamcluster monitor}: joins as role "monitor" and prints members and training progress. */
@Command(name = "monitor", mixinStandardHelpOptions = true, description = "Watch a cluster's members and training progress.")
final class MonitorCommand implements Callable<Integer> {
    @Option(names = "--seed", required = true, paramLabel = "HOST:PORT")
    String seed;

    @Option(names = "--bind", paramLabel = "HOST:PORT", defaultValue = "127.0.0.1:0")
    String bind;

    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @picocli.CommandLine.Mixin
    ClusterKeyFlags cluster;

    @Override
    public Integer call() throws Exception {
        ClusterKeys.NodeKeys keys = cluster.resolve();
        Nodes.hostPort(seed, "--seed");
        String[] b = Nodes.hostPort(bind, "--bind");
        CompletableFuture<TrainingEvent.RunFinished> done = new CompletableFuture<>();
        ActorSystem<Void> system = Nodes.start(Behaviors.<Void>setup(ctx -> {
            var out = spec.commandLine().getOut();
            // events only from the coordinator's node: what another member publishes on the topic is ignored
            EventSubscribers.subscribe(ctx, ctx.spawn(EventPrinter.create(line -> {
                out.println(line);
                out.flush();
            }, done), "printer"), "events");
            return Behaviors.empty();
        }), "monitor", b[0], Integer.parseInt(b[1]), seed, keys);
        try {
            TrainingEvent.RunFinished f = done.get(7, TimeUnit.DAYS);
            return f.ok() ? 0 : 3;
        } finally {
            system.terminate();
        }
    }
}
