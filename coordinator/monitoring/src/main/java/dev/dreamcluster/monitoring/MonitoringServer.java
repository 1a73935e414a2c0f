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
import dev.dreamcluster.protocol.RunControl;
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
 * exists. GET (and HEAD) routes are open to read; the control routes ({@code POST /api/checkpoint},
 * {@code /api/stop}, {@code /api/pause}, {@code /api/resume}, {@code PUT /api/sample_prompts}) need the
 * run's bearer token ({@link Control}) and hand the request to the coordinator on this node: 401
 * without a token, 403 with a wrong one, nothing changed either way.
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
    private final Control control;

    /**
     * The control routes' credential and where they hand requests.
     *
     * @param runId the run the token is for (public: {@code GET /api/control} gives it, so that a holder of
     *     the node key can derive the token)
     * @param token the bearer token a request must carry (derived from the node key and the run id by the launcher)
     */
    public record Control(long runId, String token, RunControl.Handler handler) {
        public Control {
            if (token == null || token.length() < 32) {
                throw new IllegalArgumentException("a control token must have at least 32 characters");
            }
        }
    }

    /** The largest sample prompts text a PUT may carry. */
    static final int MAX_PROMPTS_BYTES = 64 * 1024;

    private MonitoringServer(ActorSystem<?> system, MonitoringSettings settings, Control control) {
        this.control = control;
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
        return start(system, settings, null);
    }

    /** As above, with the control routes ({@code control} null: they answer 403, control is off on this node). */
    public static CompletionStage<URI> start(ActorSystem<?> system, MonitoringSettings settings, Control control) {
        MonitoringServer server = new MonitoringServer(system, settings, control);
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
                        path(PathMatchers.segment("api").slash("control"), this::controlInfo),
                        path(PathMatchers.segment("api").slash("events"), this::events),
                        path("metrics", this::prometheus),
                        pathPrefix("samples", () -> extractUri(uri -> sample(uri.pathSegments()))))),
                // the method inside the path: a POST to a read route stays 405 (a method directive that
                // passes cancels the other routes' method rejections, which would turn it into 404)
                path(PathMatchers.segment("api").slash("checkpoint"), () -> post(() -> authorized(() -> request(RunControl.Action.CHECKPOINT,
                        null, null)))),
                path(PathMatchers.segment("api").slash("stop"), () -> post(() -> authorized(() -> request(RunControl.Action.STOP, null,
                        null)))),
                path(PathMatchers.segment("api").slash("pause"), () -> post(() -> authorized(() -> request(RunControl.Action.PAUSE, null,
                        null)))),
                path(PathMatchers.segment("api").slash("resume"), () -> post(() -> authorized(() -> request(RunControl.Action.RESUME, null,
                        null)))),
                path(PathMatchers.segment("api").slash("sample_prompts"), () -> put(() -> authorized(() -> extractRequest(req ->
                        extractStrictEntity(scala.concurrent.duration.FiniteDuration.create(10, java.util.concurrent.TimeUnit.SECONDS),
                                entity -> prompts(req.entity().getContentType(), entity.getData())))))),
                // Not AkkaManagement.getRoutes(): that prepares every route provider, and Cluster
                // Bootstrap's may be prepared only once (AkkaManagement.start does it when the node
                // forms its cluster by bootstrap). The same checks, the same answers: 200 "OK" or 500.
                get(() -> concat(
                        path("ready", () -> health(health.readyResult())),
                        path("alive", () -> health(health.aliveResult())))),
                ClusterHttpManagementRoutes.readOnly(akka.cluster.Cluster.get(Adapter.toClassic(system))));
    }

    // ---- control ----

    /**
     * The inner route only with the run's token: 401 (with a Bearer challenge) when the request has no
     * bearer credential, 403 when it is not the token (compared in constant time) or control is off.
     */
    private Route authorized(java.util.function.Supplier<Route> inner) {
        return optionalHeaderValueByName("Authorization", header -> {
            if (header.isEmpty() || !header.get().startsWith("Bearer ")) {
                return respondWithHeader(akka.http.javadsl.model.HttpHeader.parse("WWW-Authenticate", "Bearer realm=\"dreamcluster\""),
                        () -> answer(401, 0, "control needs the run's token: Authorization: Bearer TOKEN (the URL the launcher printed,"
                                + " or dreamcluster ctl --keys DIR)"));
            }
            if (control == null) {
                return answer(403, 0, "control is off on this node");
            }
            byte[] given = header.get().substring("Bearer ".length()).trim().getBytes(java.nio.charset.StandardCharsets.UTF_8);
            if (!java.security.MessageDigest.isEqual(given, control.token().getBytes(java.nio.charset.StandardCharsets.UTF_8))) {
                return answer(403, 0, "the token is not this run's");
            }
            return inner.get();
        });
    }

    /** GET /api/control: whether control is on, and the run id its token is derived with (nothing secret). */
    private Route controlInfo() {
        var n = JsonOut.object().put("enabled", control != null);
        if (control != null) {
            n.put("run_id", Long.toString(control.runId()));
        }
        return complete(HttpEntities.create(ContentTypes.APPLICATION_JSON, JsonOut.write(n)));
    }

    private Route request(RunControl.Action action, String prompts, String format) {
        CompletionStage<RunControl.Reply> reply = control.handler().request(new RunControl.Request(action, prompts, format, "http"));
        return onComplete(reply, r -> r.isSuccess() ? answer(r.get().status(), r.get().seq(), r.get().message())
                : answer(503, 0, "the coordinator did not answer: " + r.failed().get().getMessage()));
    }

    /** PUT /api/sample_prompts: the body is a sample prompts file, JSON (EveryDream2's format) by its content type, else a prompt a line. */
    private Route prompts(ContentType type, akka.util.ByteString body) {
        if (body.size() > MAX_PROMPTS_BYTES) {
            return answer(400, 0, "sample_prompts: " + body.size() + " bytes; at most " + MAX_PROMPTS_BYTES + " allowed");
        }
        String text = body.utf8String();
        if (text.isBlank()) {
            return answer(400, 0, "sample_prompts: the body is empty; allowed: the text of a sample prompts file (.txt lines or .json)");
        }
        String format = type.mediaType().equals(MediaTypes.APPLICATION_JSON) ? "json" : "txt";
        try {
            // the syntax now (an answer the user reads); sizes against the model when every rank applies it
            dev.dreamcluster.sample.SamplePrompts.parse("sample_prompts." + format, text, 512, 1, 1, w -> { });
        } catch (dev.dreamcluster.config.ConfigError e) {
            return answer(400, 0, e.getMessage());
        }
        return request(RunControl.Action.SAMPLE_PROMPTS, text, format);
    }

    private Route answer(int status, long seq, String message) {
        String json = JsonOut.write(JsonOut.object().put("status", status).put("seq", seq).put("message", message));
        return complete(StatusCodes.get(status), HttpEntities.create(ContentTypes.APPLICATION_JSON, json));
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
