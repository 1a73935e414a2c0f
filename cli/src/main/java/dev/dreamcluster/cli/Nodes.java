package dev.dreamcluster.cli;

import akka.actor.typed.ActorSystem;
import akka.actor.typed.Behavior;
import akka.actor.typed.javadsl.Behaviors;
import akka.actor.typed.pubsub.Topic;
import akka.cluster.typed.Cluster;
import akka.cluster.typed.ClusterSingleton;
import akka.cluster.typed.ClusterSingletonSettings;
import akka.cluster.typed.Join;
import akka.cluster.typed.SingletonActor;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigValueFactory;
import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.config.Json;
import dev.dreamcluster.coordinator.Coordinator;
import dev.dreamcluster.coordinator.CoordinatorSettings;
import dev.dreamcluster.protocol.TrainingEvent;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * Starts a DreamCluster node: one role, Artery listening on the bind address and known to peers by
 * the advertised one (they differ behind NAT or in containers, as Akka's bind-hostname and
 * canonical-hostname do), and the seed it joins. Every other setting is in protocol's reference.conf.
 */
final class Nodes {
    static final String SYSTEM = "dreamcluster";

    private Nodes() {}

    /** A host and port from a flag. */
    record HostPort(String host, int port) {
        @Override
        public String toString() {
            return host + ":" + port;
        }
    }

    /**
     * @param bind where Artery listens
     * @param advertise what peers dial (null: the bind address)
     * @param join the seed node to join (null: a seed itself)
     */
    static <T> ActorSystem<T> start(Behavior<T> guardian, String role, HostPort bind, HostPort advertise, HostPort join) {
        HostPort canonical = advertise != null ? advertise : bind;
        Config c = ConfigFactory.empty()
                .withValue("akka.remote.artery.canonical.hostname", ConfigValueFactory.fromAnyRef(canonical.host()))
                .withValue("akka.remote.artery.canonical.port", ConfigValueFactory.fromAnyRef(canonical.port()))
                .withValue("akka.remote.artery.bind.hostname", ConfigValueFactory.fromAnyRef(bind.host()))
                .withValue("akka.remote.artery.bind.port", ConfigValueFactory.fromAnyRef(bind.port() == 0 && advertise == null
                        ? "" : Integer.toString(bind.port())))
                .withValue("akka.cluster.roles", ConfigValueFactory.fromIterable(List.of(role)));
        if (join != null) {
            c = c.withValue("akka.cluster.seed-nodes", ConfigValueFactory.fromIterable(List.of("akka://" + SYSTEM + "@" + join)));
        }
        return ActorSystem.create(guardian, SYSTEM, c.withFallback(ConfigFactory.load()));
    }

    /**
     * A coordinator node: joins itself (it is the seed), runs the Coordinator as a cluster singleton
     * on role "coordinator", and prints the run's TrainingEvents to {@code events}, completing {@code
     * done} when the run ends.
     */
    static ActorSystem<Void> startCoordinator(CoordinatorSettings settings, HostPort bind, HostPort advertise,
            CompletableFuture<TrainingEvent.RunFinished> done, java.io.PrintWriter events) {
        return start(Behaviors.<Void>setup(ctx -> {
            Cluster c = Cluster.get(ctx.getSystem());
            c.manager().tell(Join.create(c.selfMember().address()));
            ClusterSingleton.get(ctx.getSystem()).init(SingletonActor
                    .of(Coordinator.create(settings), "coordinator")
                    .withSettings(ClusterSingletonSettings.create(ctx.getSystem()).withRole("coordinator")));
            var topic = ctx.spawn(Topic.create(TrainingEvent.class, TrainingEvent.TOPIC), "events-client");
            topic.tell(Topic.subscribe(ctx.spawn(EventPrinter.create(line -> {
                events.println(line);
                events.flush();
            }, done), "printer")));
            return Behaviors.empty();
        }), "coordinator", bind, advertise, null);
    }

    /** HOST:PORT from a flag (null stays null), or a one-line error naming it. */
    static HostPort hostPort(String value, String flag) {
        if (value == null) {
            return null;
        }
        int colon = value.lastIndexOf(':');
        if (colon <= 0) {
            throw ConfigError.invalid(flag, Json.quote(value), "HOST:PORT");
        }
        String host = value.substring(0, colon);
        if (host.startsWith("[") && host.endsWith("]")) {
            host = host.substring(1, host.length() - 1); // [::1]:25520
        }
        try {
            int port = Integer.parseInt(value.substring(colon + 1));
            if (port < 0 || port > 65535) {
                throw new NumberFormatException();
            }
            return new HostPort(host, port);
        } catch (NumberFormatException e) {
            throw ConfigError.invalid(flag, Json.quote(value), "HOST:PORT with a port in 0..65535");
        }
    }
}
