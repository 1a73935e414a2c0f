package dev.dreamcluster.cli;

import akka.actor.typed.ActorSystem;
import akka.actor.typed.javadsl.Behaviors;
import akka.cluster.typed.Cluster;
import akka.cluster.typed.ClusterSingleton;
import akka.cluster.typed.ClusterSingletonSettings;
import akka.cluster.typed.Join;
import akka.cluster.typed.SingletonActor;
import dev.dreamcluster.coordinator.Coordinator;
import dev.dreamcluster.coordinator.CoordinatorSettings;
import dev.dreamcluster.protocol.EventSubscribers;
import dev.dreamcluster.protocol.TrainingEvent;
import java.util.concurrent.CompletableFuture;
import akka.actor.typed.Behavior;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.config.Json;

/** Builds the Akka config of a DreamCluster node: one role, Artery on HOST:PORT, optional seed. */
final class Nodes {
    static final String SYSTEM = "dreamcluster";

    private Nodes() {}

    /** @param keys the node's TLS keys (Artery over mutual TLS), or null for plain TCP (--insecure) */
    static <T> ActorSystem<T> start(Behavior<T> guardian, String role, String host, int port, String seed, ClusterKeys.NodeKeys keys) {
        // everything else a node needs is in protocol's reference.conf
        StringBuilder c = new StringBuilder();
        c.append("akka.remote.artery.canonical.hostname = \"").append(host).append("\"\n");
        c.append("akka.remote.artery.canonical.port = ").append(port).append('\n');
        c.append("akka.cluster.roles = [").append(role).append("]\n");
        if (seed != null) {
            c.append("akka.cluster.seed-nodes = [\"akka://").append(SYSTEM).append('@').append(seed).append("\"]\n");
        }
        Config config = ConfigFactory.parseString(c.toString());
        if (keys != null) {
            config = config.withFallback(ClusterKeys.akkaConfig(keys));
        }
        config = config.withFallback(ConfigFactory.load());
        return ActorSystem.create(guardian, SYSTEM, config);
    }

    /**
     * A coordinator node: joins itself (it is the seed), runs the Coordinator as a cluster singleton
     * on role "coordinator", and prints the run's TrainingEvents to stderr, completing {@code done}
     * when the run ends.
     */
    static ActorSystem<Void> startCoordinator(CoordinatorSettings settings, String host, int port,
            CompletableFuture<TrainingEvent.RunFinished> done, ClusterKeys.NodeKeys keys) {
        return start(Behaviors.<Void>setup(ctx -> {
            Cluster c = Cluster.get(ctx.getSystem());
            c.manager().tell(Join.create(c.selfMember().address()));
            ClusterSingleton.get(ctx.getSystem()).init(SingletonActor
                    .of(Coordinator.create(settings), "coordinator")
                    .withSettings(ClusterSingletonSettings.create(ctx.getSystem()).withRole("coordinator")));
            // events only from the coordinator's node (this one), never from the open topic
            EventSubscribers.subscribe(ctx, ctx.spawn(EventPrinter.create(System.err::println, done), "printer"), "events");
            return Behaviors.empty();
        }), "coordinator", host, port, null, keys);
    }

    /** HOST:PORT from a flag, or a one-line error naming it. */
    static String[] hostPort(String value, String flag) {
        int colon = value == null ? -1 : value.lastIndexOf(':');
        if (colon <= 0) {
            throw ConfigError.invalid(flag, Json.quote(String.valueOf(value)), "HOST:PORT");
        }
        try {
            int port = Integer.parseInt(value.substring(colon + 1));
            if (port < 0 || port > 65535) {
                throw new NumberFormatException();
            }
        } catch (NumberFormatException e) {
            throw ConfigError.invalid(flag, Json.quote(value), "HOST:PORT with a port in 0..65535");
        }
        return new String[] {value.substring(0, colon), value.substring(colon + 1)};
    }
}
