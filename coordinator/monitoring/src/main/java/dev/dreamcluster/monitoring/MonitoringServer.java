package dev.dreamcluster.monitoring;

import akka.NotUsed;
import akka.actor.typed.ActorRef;
import akka.actor.typed.ActorSystem;
import akka.actor.typed.DispatcherSelector;
import akka.actor.typed.Props;
import akka.actor.typed.javadsl.Adapter;
import akka.actor.typed.javadsl.AskPattern;
import akka.actor.typed.pubsub.Topic;
import akka.cluster.ClusterEvent;
import akka.cluster.Member;
import akka.cluster.typed.Cluster;
import akka.http.javadsl.Http;
import akka.http.javadsl.ServerBinding;
import akka.http.javadsl.marshalling.sse.EventStreamMarshalling;
import akka.http.javadsl.model.ContentType;
import akka.http.javadsl.model.ContentTypes;
import akka.http.javadsl.model.HttpCharsets;
import akka.http.javadsl.model.HttpEntities;
import akka.http.javadsl.model.MediaTypes;
import akka.http.javadsl.model.StatusCodes;
import akka.http.javadsl.model.headers.CacheDirectives;
import akka.http.javadsl.model.headers.CacheControl;
import akka.http.javadsl.model.sse.ServerSentEvent;
import akka.http.javadsl.server.AllDirectives;
import akka.http.javadsl.server.PathMatchers;
import akka.http.javadsl.server.Route;
import akka.management.HealthCheckSettings;
import akka.management.cluster.javadsl.ClusterHttpManagementRoutes;
import akka.management.javadsl.CheckResult;
import akka.management.javadsl.HealthChecks;
import akka.stream.OverflowStrategy;
import akka.stream.javadsl.Source;
import com.fasterxml.jackson.databind.node.ArrayNode;
import dev.dreamcluster.protocol.TrainingEvent;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Executor;
import java.util.stream.Collectors;
import java.util.stream.StreamSupport;

/**
 * The coordinator node's read-only HTTP server: Akka Management's health checks ({@code /ready},
 * {@code /alive}) and read-only cluster routes ({@code /cluster/members}) and DreamCluster's ({@code /} the dashboard,
 * {@code /api/status}, {@code /api/metrics?since=STEP}, {@code /api/events} as server-sent events,
 * {@code /metrics} for Prometheus, {@code /samples/...}) on one akka-http binding. It learns about
 * the run only from the TrainingEvent topic and the run's files: the Coordinator does not know it
 * exists. Only GET (and HEAD) is answered.
 */
public final class MonitoringServer extends AllDirectives {
    private static final Duration ASK_TIMEOUT = Duration.ofSeconds(5);
    private static final String DASHBOARD = "/dev/dreamcluster/monitoring/dashboard/";
    private static final ContentType.NonBinary PROMETHEUS = MediaTypes.TEXT_PLAIN.toContentType(HttpCharsets.UTF_8);

    private final ActorSystem<?> system;
    private final ActorRef<Topic.Command<TrainingEvent>> topic;
    private final ActorRef<RunMonitor.Command> monitor;
    private final RunFiles files;
    private final Executor blocking;
    private final HealthChecks health;

    private MonitoringServer(ActorSystem<?> system, MonitoringSettings settings) {
        this.system = system;
        this.topic = system.systemActorOf(Topic.create(TrainingEvent.class, TrainingEvent.TOPIC), "monitoring-events", Props.empty());
        this.monitor = system.systemActorOf(RunMonitor.create(topic), "monitoring-status", Props.empty());
        this.files = new RunFiles(settings.out());
        this.blocking = system.dispatchers().lookup(DispatcherSelector.blocking());
        this.health = new HealthChecks((akka.actor.ExtendedActorSystem) Adapter.toClassic(system),
                HealthCheckSettings.create(system.settings().config().getConfig("akka.management.health-checks")));
    }

    /**
     * Starts watching the topic and binds; completes with the bound base URL (the real port when the
     * settings asked for 0), or fails with the bind error.
     */
    public static CompletionStage<URI> start(ActorSystem<?> system, MonitoringSettings settings) {
        MonitoringServer server = new MonitoringServer(system, settings);
        return Http.get(system).newServerAt(settings.host(), settings.port()).bind(server.routes())
                .thenApply(MonitoringServer::baseUrl);
    }

    private static URI baseUrl(ServerBinding b) {
        var a = b.localAddress();
        String host = a.getAddress().getHostAddress();
        return URI.create("http://" + (host.contains(":") ? "[" + host + "]" : host) + ":" + a.getPort() + "/");
    }

    Route routes() {
        return concat(
                get(() -> concat(
                        pathSingleSlash(() -> resource("index.html", ContentTypes.TEXT_HTML_UTF8)),
                        path("dashboard.js", () -> resource("dashboard.js",
                                MediaTypes.APPLICATION_JAVASCRIPT.toContentType(HttpCharsets.UTF_8))),
                        path(PathMatchers.segment("api").slash("status"), this::status),
                        path(PathMatchers.segment("api").slash("metrics"), () -> parameterOptional("since", this::metrics)),
                        path(PathMatchers.segment("api").slash("events"), this::events),
                        path("metrics", this::prometheus),
                        pathPrefix("samples", () -> extractUri(uri -> sample(uri.pathSegments()))))),
                // Not AkkaManagement.getRoutes(): that prepares every route provider, and Cluster
                // Bootstrap's may be prepared only once (AkkaManagement.start does it when the node
                // forms its cluster by bootstrap). The same checks, the same answers: 200 "OK" or 500.
                get(() -> concat(
                        path("ready", () -> health(health.readyResult())),
                        path("alive", () -> health(health.aliveResult())))),
                ClusterHttpManagementRoutes.readOnly(akka.cluster.Cluster.get(Adapter.toClassic(system))));
    }

    private Route health(CompletionStage<CheckResult> check) {
        return onSuccess(check, r -> r.isSuccess()
                ? complete(StatusCodes.OK, "OK")
                : complete(StatusCodes.INTERNAL_SERVER_ERROR, "Not Healthy: " + r.failure().orElse("")));
    }

    private Route resource(String name, ContentType type) {
        byte[] body;
        try (InputStream in = MonitoringServer.class.getResourceAsStream(DASHBOARD + name)) {
            if (in == null) {
                return complete(StatusCodes.NOT_FOUND, "the jar has no " + name);
            }
            body = in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return respondWithHeader(CacheControl.create(CacheDirectives.NO_CACHE), () -> complete(HttpEntities.create(type, body)));
    }

    private CompletionStage<RunStatus.Snapshot> snapshot() {
        return AskPattern.ask(monitor, RunMonitor.GetStatus::new, ASK_TIMEOUT, system.scheduler());
    }

    private Route status() {
        CompletionStage<String> body = snapshot().thenApplyAsync(s -> {
            ClusterEvent.CurrentClusterState state = Cluster.get(system).state();
            return JsonOut.write(StatusJson.of(s, files, state.getMembers(), state.getUnreachable()));
        }, blocking);
        return onSuccess(body, json -> complete(HttpEntities.create(ContentTypes.APPLICATION_JSON, json)));
    }

    private Route metrics(Optional<String> since) {
        int from;
        try {
            from = since.map(Integer::parseInt).orElse(0);
        } catch (NumberFormatException e) {
            return complete(StatusCodes.BAD_REQUEST, "since: \"" + since.get() + "\" is not a step number (an integer)");
        }
        CompletionStage<String> body = CompletableFuture.supplyAsync(() -> {
            ArrayNode rows = JsonOut.array();
            files.metricsSince(from).forEach(rows::add);
            return JsonOut.write(rows);
        }, blocking);
        return onSuccess(body, json -> complete(HttpEntities.create(ContentTypes.APPLICATION_JSON, json)));
    }

    /**
     * Each client gets its own subscription to the topic; a slow client loses its oldest events
     * (a buffer of 1024), never the run. The stream ends after RunFinished; a comment line every
     * 15 s keeps proxies from closing an idle connection.
     */
    private Route events() {
        Source<ServerSentEvent, NotUsed> source = Source.<TrainingEvent>actorRef(m -> Optional.empty(), m -> Optional.empty(), 1024,
                        OverflowStrategy.dropHead())
                .mapMaterializedValue(ref -> {
                    topic.tell(Topic.subscribe(Adapter.toTyped(ref)));
                    return NotUsed.getInstance();
                })
                .takeWhile(e -> !(e instanceof TrainingEvent.RunFinished), true)
                .map(e -> ServerSentEvent.create(JsonOut.write(JsonOut.event(e)), e.getClass().getSimpleName()))
                .keepAlive(Duration.ofSeconds(15), ServerSentEvent::heartbeat);
        return completeOK(source, EventStreamMarshalling.toEventStream());
    }

    private Route prometheus() {
        CompletionStage<String> body = snapshot().thenApplyAsync(s -> Prometheus.of(s, files.checkpoints(),
                Cluster.get(system).state().getMembers()), blocking);
        return onSuccess(body, text -> complete(HttpEntities.create(PROMETHEUS, text)));
    }

    private Route sample(Iterable<String> uriSegments) {
        List<String> segments = new ArrayList<>();
        uriSegments.forEach(segments::add);
        // the path is /samples/<segments>: drop "samples" and a trailing slash's empty segment
        List<String> rel = segments.subList(1, segments.size());
        if (rel.isEmpty() || (rel.size() == 1 && rel.get(0).isEmpty())) {
            CompletionStage<String> body = CompletableFuture.supplyAsync(() -> {
                ArrayNode list = JsonOut.array();
                files.latestSamples(1000).forEach(list::add);
                return JsonOut.write(list);
            }, blocking);
            return onSuccess(body, json -> complete(HttpEntities.create(ContentTypes.APPLICATION_JSON, json)));
        }
        Optional<Path> file = files.sample(rel);
        if (file.isEmpty()) {
            return complete(StatusCodes.NOT_FOUND, "no such sample");
        }
        return complete(HttpEntities.create(contentType(file.get()), file.get()));
    }

    static ContentType contentType(Path p) {
        String name = p.getFileName().toString().toLowerCase(Locale.ROOT);
        if (name.endsWith(".png")) {
            return ContentTypes.create(MediaTypes.IMAGE_PNG);
        } else if (name.endsWith(".jpg") || name.endsWith(".jpeg")) {
            return ContentTypes.create(MediaTypes.IMAGE_JPEG);
        } else if (name.endsWith(".webp")) {
            return ContentTypes.create(MediaTypes.IMAGE_WEBP);
        } else if (name.endsWith(".gif")) {
            return ContentTypes.create(MediaTypes.IMAGE_GIF);
        } else if (name.endsWith(".txt") || name.endsWith(".json")) {
            return ContentTypes.TEXT_PLAIN_UTF8;
        }
        return ContentTypes.APPLICATION_OCTET_STREAM;
    }
}
