package dev.dreamcluster.cli;

import akka.actor.typed.ActorSystem;
import akka.actor.typed.javadsl.Behaviors;
import akka.actor.typed.pubsub.Topic;
import akka.cluster.typed.Cluster;
import akka.cluster.typed.ClusterSingleton;
import akka.cluster.typed.ClusterSingletonSettings;
import akka.cluster.typed.Join;
import akka.cluster.typed.SingletonActor;
import dev.dreamcluster.coordinator.Coordinator;
import dev.dreamcluster.coordinator.CoordinatorSettings;
import dev.dreamcluster.protocol.CborSerializable;
import dev.dreamcluster.protocol.TrainingEvent;
import java.util.concurrent.CompletableFuture;
import akka.actor.typed.Behavior;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.config.Json;
import dev.dreamcluster.monitoring.MonitoringServer;
import dev.dreamcluster.monitoring.MonitoringSettings;
import dev.dreamcluster.monitoring.TerminalView;
import java.net.URI;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/** Builds the Akka config of a DreamCluster node: one role, Artery on HOST:PORT, optional seed. */
final class Nodes {
    static final String SYSTEM = "dreamcluster";

    private Nodes() {}

    static <T> ActorSystem<T> start(Behavior<T> guardian, String role, String host, int port, String seed) {
        // everything else a node needs is in protocol's reference.conf
        StringBuilder c = new StringBuilder();
        c.append("akka.remote.artery.canonical.hostname = \"").append(host).append("\"\n");
        c.append("akka.remote.artery.canonical.port = ").append(port).append('\n');
        c.append("akka.cluster.roles = [").append(role).append("]\n");
        if (seed != null) {
            c.append("akka.cluster.seed-nodes = [\"akka://").append(SYSTEM).append('@').append(seed).append("\"]\n");
        }
        Config config = ConfigFactory.parseString(c.toString()).withFallback(protocolDefaults()).withFallback(ConfigFactory.load());
        return ActorSystem.create(guardian, SYSTEM, config);
    }

    /**
     * protocol's reference.conf, read on its own: reference.conf files merge in class-path order with
     * the first one winning, and with {@code lib/*} the JVM may put akka-actor's (provider = local)
     * before protocol's (measured: it did once the akka-http jars joined the distribution).
     */
    private static Config protocolDefaults() {
        java.net.URL marker = CborSerializable.class.getResource("CborSerializable.class");
        String url = marker.toString();
        try {
            return ConfigFactory.parseURL(new java.net.URL(url.substring(0, url.length()
                    - "dev/dreamcluster/protocol/CborSerializable.class".length()) + "reference.conf"));
        } catch (java.net.MalformedURLException e) {
            throw new IllegalStateException("cannot locate protocol's reference.conf next to " + url, e);
        }
    }

    /**
     * A coordinator node: joins itself (it is the seed), runs the Coordinator as a cluster singleton
     * on role "coordinator", prints the run's TrainingEvents to stderr (a redrawn status block when
     * stderr is a terminal), serves the monitoring HTTP API on {@code http}, and completes {@code done}
     * when the run ends.
     */
    static ActorSystem<Void> startCoordinator(CoordinatorSettings settings, String host, int port, MonitoringSettings http,
            CompletableFuture<TrainingEvent.RunFinished> done) {
        ActorSystem<Void> system = start(Behaviors.<Void>setup(ctx -> {
            Cluster c = Cluster.get(ctx.getSystem());
            c.manager().tell(Join.create(c.selfMember().address()));
            ClusterSingleton.get(ctx.getSystem()).init(SingletonActor
                    .of(Coordinator.create(settings), "coordinator")
                    .withSettings(ClusterSingletonSettings.create(ctx.getSystem()).withRole("coordinator")));
            var topic = ctx.spawn(Topic.create(TrainingEvent.class,
                    TrainingEvent.TOPIC), "events-client");
            boolean terminal = TerminalView.isTerminal(2);
            topic.tell(Topic.subscribe(ctx.spawn(EventPrinter.create(terminal ? null : System.err::println,
                    terminal ? new TerminalView(System.err) : null, done), "printer")));
            return Behaviors.empty();
        }), "coordinator", host, port, null);
        try {
            URI url = MonitoringServer.start(system, http).toCompletableFuture().get(60, TimeUnit.SECONDS);
            System.err.println("monitoring on " + url + " (dashboard; api/status, api/metrics, api/events, metrics, ready)");
        } catch (ExecutionException | TimeoutException | InterruptedException e) {
            system.terminate();
            Throwable why = e instanceof ExecutionException ? e.getCause() : e;
            throw new ConfigError("--http: cannot listen on " + http.host() + ":" + http.port() + " (" + why.getMessage() + ")");
        }
        return system;
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
