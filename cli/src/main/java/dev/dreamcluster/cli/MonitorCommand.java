package dev.dreamcluster.cli;

import akka.actor.typed.ActorRef;
import akka.actor.typed.ActorSystem;
import akka.actor.typed.javadsl.Behaviors;
import akka.actor.typed.pubsub.Topic;
import dev.dreamcluster.protocol.TrainingEvent;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code dreamcluster monitor}: joins as role "monitor" and prints members and training progress. */
@Command(name = "monitor", mixinStandardHelpOptions = true, description = "Watch a cluster's members and training progress.")
final class MonitorCommand implements Callable<Integer> {
    @Option(names = "--join", required = true, paramLabel = "HOST:PORT", description = "the coordinator's cluster address")
    String join;

    @Option(names = "--bind", paramLabel = "HOST:PORT", defaultValue = "127.0.0.1:0", description = "where this node's cluster port listens")
    String bind;

    @Option(names = "--advertise", paramLabel = "HOST:PORT", description = "the cluster address peers dial (default: --bind)")
    String advertise;

    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        Nodes.HostPort seed = Nodes.hostPort(join, "--join");
        Nodes.HostPort b = Nodes.hostPort(bind, "--bind");
        Nodes.HostPort a = Nodes.hostPort(advertise, "--advertise");
        CompletableFuture<TrainingEvent.RunFinished> done = new CompletableFuture<>();
        ActorSystem<Void> system = Nodes.start(Behaviors.<Void>setup(ctx -> {
            ActorRef<Topic.Command<TrainingEvent>> topic = ctx.spawn(Topic.create(TrainingEvent.class, TrainingEvent.TOPIC), "events");
            var out = spec.commandLine().getOut();
            topic.tell(Topic.subscribe(ctx.spawn(EventPrinter.create(line -> {
                out.println(line);
                out.flush();
            }, done), "printer")));
            return Behaviors.empty();
        }), "monitor", b, a, seed);
        try {
            TrainingEvent.RunFinished f = done.get(7, TimeUnit.DAYS);
            return f.ok() ? 0 : 3;
        } finally {
            system.terminate();
        }
    }
}
