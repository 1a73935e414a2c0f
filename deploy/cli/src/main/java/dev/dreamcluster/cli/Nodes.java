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
import dev.dreamcluster.protocol.EventSubscribers;
import dev.dreamcluster.protocol.TrainingEvent;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import dev.dreamcluster.monitoring.MonitoringServer;
import dev.dreamcluster.protocol.RunControl;
import akka.actor.typed.javadsl.AskPattern;
import dev.dreamcluster.monitoring.MonitoringSettings;
import dev.dreamcluster.monitoring.TerminalView;
import java.net.URI;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Starts a DreamCluster node: one role, Artery listening on the bind address and known to peers by
 * the advertised one (they differ behind NAT or in containers, as Akka's bind-hostname and
 * canonical-hostname do), and the seed it joins. Every other setting is in protocol's
 * dreamcluster-node.conf (and reference.conf, for the serialization bindings).
 */
final class Nodes {
    static final String SYSTEM = "dreamcluster";
    /** Every node's cluster settings (protocol/src/main/resources). */
    static final String NODE_CONF = "dreamcluster-node.conf";

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
     * @param keys the node's TLS keys (Artery over mutual TLS), or null for plain TCP (--insecure)
     */
    static <T> ActorSystem<T> start(Behavior<T> guardian, String role, HostPort bind, HostPort advertise, HostPort join,
            ClusterKeys.NodeKeys keys) {
        return start(guardian, role, bind, advertise, join, keys, "");
    }

    /** As above, plus {@code extra} HOCON (Cluster Bootstrap and management, {@link ClusterFormation#config}). */
    static <T> ActorSystem<T> start(Behavior<T> guardian, String role, HostPort bind, HostPort advertise, HostPort join,
            ClusterKeys.NodeKeys keys, String extra) {
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
        Config config = ConfigFactory.parseString(extra).withFallback(c);
        if (keys != null) {
            config = config.withFallback(ClusterKeys.akkaConfig(keys));
        }
        return ActorSystem.create(guardian, SYSTEM, config.withFallback(ConfigFactory.parseResources(NODE_CONF))
                .withFallback(ConfigFactory.load()));
    }

    /**
     * A coordinator node: joins itself (it is the seed), runs the Coordinator as a cluster singleton
     * on role "coordinator", prints the run's TrainingEvents to {@code events} (a redrawn status block
     * on stderr instead when stderr is a terminal), serves the monitoring HTTP API on {@code http}
     * (its URL printed once to {@code events}), and completes {@code done} when the run ends.
     */
    static ActorSystem<Void> startCoordinator(CoordinatorSettings settings, HostPort bind, HostPort advertise, MonitoringSettings http,
            CompletableFuture<TrainingEvent.RunFinished> done, java.io.PrintWriter events, ClusterKeys.NodeKeys keys) {
        return startCoordinator(settings, bind, advertise, http, done, events, keys, false, "");
    }

    /** With {@code bootstrap} the node does not join itself: Cluster Bootstrap forms the cluster. */
    static ActorSystem<Void> startCoordinator(CoordinatorSettings settings, HostPort bind, HostPort advertise, MonitoringSettings http,
            CompletableFuture<TrainingEvent.RunFinished> done, java.io.PrintWriter events, ClusterKeys.NodeKeys keys, boolean bootstrap,
            String extra) {
        ActorSystem<Void> system = start(Behaviors.<Void>setup(ctx -> {
            Cluster c = Cluster.get(ctx.getSystem());
            if (!bootstrap) {
                c.manager().tell(Join.create(c.selfMember().address()));
            }
            ClusterSingleton.get(ctx.getSystem()).init(SingletonActor
                    .of(Coordinator.create(settings), "coordinator")
                    .withSettings(ClusterSingletonSettings.create(ctx.getSystem()).withRole("coordinator")));
            boolean terminal = TerminalView.isTerminal(2);
            // events only from the coordinator's node (this one), never from the open topic
            EventSubscribers.subscribe(ctx, ctx.spawn(EventPrinter.create(terminal ? null : line -> {
                events.println(line);
                events.flush();
            }, terminal ? new TerminalView(System.err) : null, done), "printer"), "events");
            return Behaviors.empty();
        }), "coordinator", bind, advertise, null, keys, extra);
        try {
            MonitoringServer.Control control = null;
            if (keys != null) { // control needs a credential: the token derived from this node's key
                var coordinator = ClusterSingleton.get(system).init(SingletonActor.of(Coordinator.create(settings), "coordinator")
                        .withSettings(ClusterSingletonSettings.create(system).withRole("coordinator")));
                control = new MonitoringServer.Control(settings.runId(), ClusterKeys.controlToken(keys, settings.runId()),
                        r -> AskPattern.ask(coordinator,
                        (akka.actor.typed.ActorRef<RunControl.Reply> replyTo) -> new Coordinator.Control(r, replyTo),
                        java.time.Duration.ofSeconds(5), system.scheduler()));
            }
            URI url = MonitoringServer.start(system, http, control).toCompletableFuture().get(60, TimeUnit.SECONDS);
            events.println("monitoring on " + url + " (dashboard; api/status, api/metrics, api/events, metrics, ready)");
            if (control != null) {
                String ctl = "dreamcluster ctl checkpoint|stop|pause|resume|prompts --url " + url + " --keys " + keys.dir();
                if (TerminalView.isTerminal(2)) {
                    // the credential travels in the fragment: a browser never sends it to a server, the page reads it
                    events.println("control: " + url + "#token=" + control.token() + " (the dashboard with its buttons; from a"
                            + " terminal: " + ctl + ")");
                } else { // a log (a pod's, a CI's) must not hold it: whoever holds the key derives it
                    events.println("control: " + ctl + "; the dashboard's control URL: dreamcluster ctl url --url " + url
                            + " --keys " + keys.dir());
                }
            }
            events.flush();
        } catch (ExecutionException | TimeoutException | InterruptedException e) {
            system.terminate();
            Throwable why = e instanceof ExecutionException ? e.getCause() : e;
            throw new ConfigError("--http: cannot listen on " + http.host() + ":" + http.port() + " (" + why.getMessage() + ")");
        }
        return system;
    }

    /**
     * Waits, up to {@code within}, until no worker is a member any more, then returns. The coordinator's
     * node is the cluster's leader: if it left while its workers were leaving too, they could not be
     * moved to Exiting and each would sit out Akka's shutdown phase timeouts (up to a minute) before its
     * process ended. A worker whose run ended leaves gracefully (Worker.end), so this takes a gossip
     * round or two. Polls the local cluster state: this runs on the command's thread, never an actor's.
     */
    static void awaitWorkersLeft(ActorSystem<?> system, java.time.Duration within) throws InterruptedException {
        long deadline = System.nanoTime() + within.toNanos();
        Cluster cluster = Cluster.get(system);
        while (System.nanoTime() < deadline && java.util.stream.StreamSupport.stream(cluster.state().getMembers().spliterator(), false)
                .anyMatch(m -> m.hasRole("worker"))) {
            Thread.sleep(50);
        }
    }

    /**
     * Downs every worker still a member, without waiting: for a launcher whose worker JVMs have all
     * exited. A worker that crashed, or was stopped after 20 s, is still a member (Up or Leaving) and
     * would hold this node's own leave for the whole cluster-exiting phase (4 s); downed and
     * unreachable, it no longer counts for the leader's convergence.
     */
    static void downWorkers(ActorSystem<?> system) {
        Cluster cluster = Cluster.get(system);
        for (akka.cluster.Member m : cluster.state().getMembers()) {
            if (m.hasRole("worker")) {
                cluster.manager().tell(new akka.cluster.typed.Down(m.address()));
            }
        }
    }

    /**
     * SIGTERM (or Ctrl-C) to a coordinator's JVM runs Akka's coordinated shutdown from its JVM hook; its
     * first phase (given the grace by {@link WorkerCommand#graceConfig}) asks the coordinator to stop the
     * run at the next step boundary with a committed checkpoint ({@link Coordinator.StopAtCheckpoint}),
     * waits for the run's end, at most {@code graceSeconds}, and prints the command that resumes it
     * ({@code resumeLine}) on stderr. Past the bound the node goes as before (the workers find their
     * coordinator lost). A shutdown for any other reason goes at once; a second SIGTERM changes nothing.
     */
    static void stopAtCheckpointOnSigterm(ActorSystem<?> system, CoordinatorSettings settings,
            CompletableFuture<TrainingEvent.RunFinished> done, int graceSeconds,
            java.util.function.Function<TrainingEvent.RunFinished, String> resumeLine) {
        akka.actor.CoordinatedShutdown cs = akka.actor.CoordinatedShutdown.get(system);
        cs.addTask(akka.actor.CoordinatedShutdown.PhaseBeforeServiceUnbind(), "stop-run-at-checkpoint", () -> {
            boolean sigterm = cs.getShutdownReason().filter(r -> r.equals(akka.actor.CoordinatedShutdown.jvmExitReason())).isPresent();
            if (!sigterm || graceSeconds == 0 || done.isDone()) {
                return CompletableFuture.completedFuture(akka.Done.getInstance());
            }
            System.err.println("SIGTERM: the run commits a checkpoint after the step in flight, then stops (at most " + graceSeconds
                    + " s, --preemption_grace)");
            // the singleton's proxy on this node (init again returns the one already started)
            ClusterSingleton.get(system).init(SingletonActor.of(Coordinator.create(settings), "coordinator")
                    .withSettings(ClusterSingletonSettings.create(system).withRole("coordinator")))
                    .tell(new Coordinator.StopAtCheckpoint("SIGTERM"));
            // a copy: the launcher's own wait must see the real end, never the timeout's null
            return done.copy().completeOnTimeout(null, graceSeconds, TimeUnit.SECONDS).thenApply(end -> {
                System.err.println(end == null ? "SIGTERM: no checkpoint was committed within " + graceSeconds + " s (--preemption_grace);"
                        + " the last committed one under checkpoints/ resumes the run" : resumeLine.apply(end));
                System.err.flush();
                return akka.Done.getInstance();
            });
        });
    }

    /** How long a stopping node may take to terminate once its last shutdown phases have begun. */
    static final java.time.Duration STOP_GRACE = java.time.Duration.ofSeconds(15);

    /**
     * Completes with true once {@code system} has terminated, or with false if it has not
     * {@link #STOP_GRACE} after its coordinated shutdown began its last phases. Every phase before
     * those has a timeout (dreamcluster-node.conf), but Akka 2.6's Artery then waits without one for its
     * TLS streams to complete (Pekko bounded that wait in 2026): in one CI run (2026-12-07) a node that
     * had joined and was told to terminate had not terminated 90 s later. By then the node has left the
     * cluster and has nothing to hand over, so a command waiting for it goes on (and its JVM exits).
     * Register before the shutdown starts; completing it costs one timer task, never a thread.
     */
    static CompletableFuture<Boolean> stopped(ActorSystem<?> system) {
        return stopped(system, STOP_GRACE);
    }

    /** As above with another grace (a test's, shorter than a stall it makes). */
    static CompletableFuture<Boolean> stopped(ActorSystem<?> system, java.time.Duration grace) {
        CompletableFuture<Boolean> stopped = new CompletableFuture<>();
        system.getWhenTerminated().whenComplete((d, t) -> stopped.complete(true));
        akka.actor.CoordinatedShutdown.get(system).addTask(akka.actor.CoordinatedShutdown.PhaseBeforeActorSystemTerminate(),
                "bound-termination", () -> {
                    CompletableFuture.delayedExecutor(grace.toMillis(), TimeUnit.MILLISECONDS).execute(() -> stopped.complete(false));
                    return CompletableFuture.completedFuture(akka.Done.getInstance());
                });
        return stopped;
    }

    /**
     * Terminates {@code system} and waits as {@link #stopped} does: true if it terminated, false (with a
     * line on stderr) if Akka's transport still had not stopped. At most the shutdown phases' timeouts
     * (about 35 s) plus {@link #STOP_GRACE}; the 3-minute bound only catches a broken promise of those.
     */
    static boolean stop(ActorSystem<?> system) throws InterruptedException, ExecutionException, TimeoutException {
        CompletableFuture<Boolean> stopped = stopped(system);
        system.terminate();
        boolean terminated = stopped.get(3, TimeUnit.MINUTES);
        if (!terminated) {
            System.err.println("warning: node " + system.address() + " had not terminated " + STOP_GRACE.toSeconds()
                    + " s after its last shutdown phase began (Akka's remoting still stopping); going on without it");
        }
        return terminated;
    }

    /** The node config's failure-detector pause (dreamcluster-node.conf), in seconds. */
    static final int HEARTBEAT_PAUSE = 8;

    /**
     * Akka config for {@code seconds} of heartbeat silence before "unreachable" (1..600, else a one-line
     * error naming {@code flag}); "" for the node config's own {@link #HEARTBEAT_PAUSE}.
     */
    static String heartbeatConfig(int seconds, String flag) {
        if (seconds < 1 || seconds > 600) {
            throw ConfigError.invalid(flag, Integer.toString(seconds), "1..600 seconds");
        }
        return seconds == HEARTBEAT_PAUSE ? "" : "\nakka.cluster.failure-detector.acceptable-heartbeat-pause = " + seconds + "s\n";
    }

    /**
     * The heartbeat pause of an embedded cluster of {@code workers} local worker JVMs on {@code cores}
     * cores: the node default, times the oversubscription. Eight JVMs starting together on 2 cores
     * (TLS handshakes, libtorch load, the op check, all at once) stretched heartbeat intervals to 6-9 s
     * on a quiet machine (2026-12-07) and the 8 s default marked 5 of 8 unreachable before the first
     * step; 4 per core gives 32 s. A killed worker is still seen at once (its ring peers read EOF).
     */
    static int embeddedHeartbeatPause(int workers, int cores) {
        return HEARTBEAT_PAUSE * Math.max(1, (workers + cores - 1) / Math.max(1, cores));
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

    /**
     * Completes {@code done} with a failure (exit 3) when the coordinator's ActorSystem terminates
     * before the run finished: the split-brain resolver downed its node, it was removed or
     * quarantined, or its coordinated shutdown ran. Without this the launcher's wait for RunFinished
     * would never end. A run that finished completed {@code done} first, so this changes nothing then.
     */
    static void endWhenTerminated(akka.actor.typed.ActorSystem<?> system, long runId,
            java.util.concurrent.CompletableFuture<dev.dreamcluster.protocol.TrainingEvent.RunFinished> done) {
        stopped(system).whenComplete((d, t) -> done.complete(new dev.dreamcluster.protocol.TrainingEvent.RunFinished(runId,
                false, "the coordinator's node left the cluster before the run finished (downed by the split-brain resolver, removed "
                + "or quarantined; see the log); the last committed checkpoint under checkpoints/ resumes the run",
                dev.dreamcluster.protocol.TrainingEvent.RunFinished.EXIT_HALTED)));
    }
}
