package dev.dreamcluster.coordinator;

import static dev.dreamcluster.coordinator.Env.seconds;

import akka.actor.Address;
import akka.actor.NoSerializationVerificationNeeded;
import akka.actor.typed.ActorRef;
import akka.actor.typed.Behavior;
import akka.actor.typed.DispatcherSelector;
import akka.actor.typed.javadsl.BehaviorBuilder;
import akka.actor.typed.javadsl.Behaviors;
import akka.actor.typed.receptionist.Receptionist;
import akka.cluster.ClusterEvent;
import akka.cluster.Member;
import akka.cluster.MemberStatus;
import akka.cluster.typed.Cluster;
import akka.cluster.typed.Subscribe;
import dev.dreamcluster.config.RunConfig;
import dev.dreamcluster.io.MetricsLog;
import dev.dreamcluster.plan.PlanManifest;
import dev.dreamcluster.protocol.CoordinatorProtocol;
import dev.dreamcluster.protocol.CoordinatorProtocol.GenerationEnded;
import dev.dreamcluster.protocol.CoordinatorProtocol.WorkerIdentified;
import dev.dreamcluster.protocol.EventSubscribers;
import dev.dreamcluster.protocol.RunControl;
import dev.dreamcluster.protocol.TrainingEvent;
import dev.dreamcluster.protocol.TrainingEvent.RunFinished;
import dev.dreamcluster.protocol.WorkerProtocol;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashSet;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.function.BiFunction;
import java.util.function.Function;

/**
 * Drives one training run as a sequence of generations (run as a cluster singleton on role
 * "coordinator"). Each generation has a world (ranks), a plan hash and a ring, and starts from the
 * initial weights or the last committed checkpoint. Each phase is a method that returns the
 * behaviour for an immutable {@link RunState}; a generation's own phases are in {@link Generation}.
 *
 * <pre>
 *   waiting   for min_workers workers to register and report their ring address (bounded: join, rejoin)
 *   planning  the plan manifest for this world is computed off the actor thread (it hashes files)
 *   assigning every rank checks the plan against its own copies and accepts or refuses (bounded: accept)
 *   running   step reports become TrainingEvents and metrics.jsonl lines; a lost rank, or a spare
 *             worker at a checkpoint boundary, ends the generation
 *   aborting  every rank is told to stop and answers (bounded: abort; silent ranks count as lost); the
 *             survivors (and spares, up to max_workers) form the next generation from the last checkpoint,
 *             or the run waits for new workers if fewer than min_workers remain
 *   finished  every rank finished, or the run failed or was stopped
 * </pre>
 *
 * <p>Worker messages reach a phase unwrapped, one handler per type, once {@link WorkerGate} has
 * checked the node that sent them. Inside, the behaviour is typed on Object because it takes two
 * closed protocols, its own {@link Command}s and the workers' {@link CoordinatorProtocol}; the gate
 * lets nothing else in. metrics.jsonl is written by {@link RunFolder}, off this actor's thread.
 */
public final class Coordinator {
    /** The coordinator's own messages: local only (no serializer is bound, so no other node can send one). */
    public sealed interface Command extends NoSerializationVerificationNeeded {}

    /** Stop the run (the launcher, on this JVM; a remote Stop is dropped when it is deserialized). */
    public record Stop(String reason) implements Command {}

    /**
     * Stop the run at the next step boundary with a committed checkpoint (the launcher got SIGTERM, on
     * this JVM): a running generation's ranks all stop after the same step, commit its checkpoint and
     * end the generation, and the run stops naming it ({@link #LAST_CHECKPOINT}) instead of going on.
     * In any other phase no step is in flight: the run stops at once, naming the last checkpoint.
     */
    public record StopAtCheckpoint(String reason) implements Command {}

    /**
     * A user's control request (the monitoring server's authenticated routes, on this node), answered
     * at once: accepted (applied by every rank at the next step boundary) or refused with why.
     */
    public record Control(RunControl.Request request, ActorRef<RunControl.Reply> replyTo) implements Command {}

    /** What a failed or stopped run's message ends with, before the checkpoint's path ("none" when there is none). */
    public static final String LAST_CHECKPOINT = "; last committed checkpoint: ";

    private record WorkersListed(Receptionist.Listing listing) implements Command {}

    private record SubscribersListed(Set<ActorRef<TrainingEvent>> subscribers) implements Command {}

    private record MemberChanged(ClusterEvent.MemberEvent event) implements Command {}

    private record BecameUnreachable(Member member) implements Command {}

    /** A generation's plan manifest, computed off the actor thread (error: why it could not be). */
    record Planned(int generation, PlanManifest manifest, String hash, String error) implements Command {}

    /** metrics.jsonl is closed (error: the run folder did not answer in time); see {@link RunFolder.Closed}. */
    private record FolderClosed(String newestCheckpoint, Throwable error) implements Command {}

    /** The timer keys, each also its timer's message: starting a timer again replaces it, so none fires stale. */
    enum Timeout implements Command {
        JOIN, REJOIN, ACCEPT, ABORT
    }

    /** How long the run's end waits for metrics.jsonl to be closed before it is published anyway. */
    private static final Duration CLOSE_WITHIN = Duration.ofSeconds(10);

    private Coordinator() {}

    public static Behavior<Command> create(CoordinatorSettings settings) {
        return Behaviors.<Object>setup(ctx -> Behaviors.withTimers(timers -> {
            ctx.setLoggerName(Coordinator.class); // its phases log through Env and WorkerGate: name them as one
            Env env = Env.spawn(ctx, timers, settings);
            // one adapter per message class: both listings arrive through it
            ActorRef<Receptionist.Listing> listings = ctx.messageAdapter(Receptionist.Listing.class,
                    l -> l.isForKey(EventSubscribers.SERVICE) ? new SubscribersListed(l.getServiceInstances(EventSubscribers.SERVICE))
                            : new WorkersListed(l));
            ctx.getSystem().receptionist().tell(Receptionist.subscribe(WorkerProtocol.SERVICE, listings));
            ctx.getSystem().receptionist().tell(Receptionist.subscribe(EventSubscribers.SERVICE, listings));
            var cluster = Cluster.get(ctx.getSystem()).subscriptions();
            cluster.tell(Subscribe.create(ctx.messageAdapter(ClusterEvent.MemberEvent.class, MemberChanged::new),
                    ClusterEvent.MemberEvent.class));
            cluster.tell(Subscribe.create(ctx.messageAdapter(ClusterEvent.UnreachableMember.class, u -> new BecameUnreachable(u.member())),
                    ClusterEvent.UnreachableMember.class));
            timers.startSingleTimer(Timeout.JOIN, settings.timeouts().join());
            return waiting(env, RunState.start(settings.resume()));
        })).narrow();
    }

    // ---- phases ----

    private static Behavior<Object> waiting(Env env, RunState s) {
        CoordinatorSettings cs = env.settings();
        return phase(env, s, Behaviors.receive(Object.class)
                .onMessage(WorkerIdentified.class, m -> onIdentified(env, s, m, next -> planWhenEnough(env, next)))
                .onMessageEquals(Timeout.JOIN, () -> fail(env, s, tooFew(s, cs.startWorkers(), cs.timeouts().join())))
                .onMessageEquals(Timeout.REJOIN, () -> fail(env, s, tooFew(s, cs.minWorkers(), cs.timeouts().rejoin()))),
                next -> waiting(env, next), (next, why) -> waiting(env, next));
    }

    private static Behavior<Object> planning(Env env, RunState s) {
        return phase(env, s, Behaviors.receive(Object.class).onMessage(Planned.class, m -> Generation.assign(env, s, m)),
                next -> planning(env, next), (next, why) -> planning(env, next));
    }

    /**
     * A phase before the end: its own handlers first, then what every such phase does (discovery,
     * subscribers, membership, the user's stop), behind a gate for the state's ranks. Anything else (a
     * late report of an ended generation, another phase's timer or plan) is dropped.
     *
     * @param stay this phase with a new state
     * @param afterLoss this phase after workers were lost: the new state and, when one held a rank, why
     *     the generation ends (null when none did)
     */
    static Behavior<Object> phase(Env env, RunState s, BehaviorBuilder<Object> own, Function<RunState, Behavior<Object>> stay,
            BiFunction<RunState, String, Behavior<Object>> afterLoss) {
        return WorkerGate.around(s.ranks(), own
                .onMessage(WorkerIdentified.class, m -> onIdentified(env, s, m, stay))
                .onMessage(WorkersListed.class, m -> stay.apply(onWorkersListed(env, s, m)))
                .onMessage(SubscribersListed.class, m -> stay.apply(s.withSubscribers(m.subscribers())))
                .onMessage(MemberChanged.class, m -> onMemberChanged(env, s, m, afterLoss))
                .onMessage(BecameUnreachable.class, m -> onNodeLost(env, s, m.member().address(), "became unreachable", afterLoss))
                .onMessage(Stop.class, m -> fail(env, s, "stopped: " + m.reason()))
                .onMessage(StopAtCheckpoint.class, m -> fail(env, s, "stopped: " + m.reason()))
                .onMessage(Control.class, m -> stay.apply(onControl(env, s, m, false)))
                .onMessage(CoordinatorProtocol.ControlApplied.class, m -> stay.apply(onControlApplied(env, s, m)))
                .onAnyMessage(m -> Behaviors.same())
                .build());
    }

    /** The run is over; {@code end} is published once metrics.jsonl is closed. Membership still is: workers leave. */
    private static Behavior<Object> finished(Env env, RunState s, Function<String, RunFinished> end) {
        return WorkerGate.around(s.ranks(), Behaviors.receive(Object.class)
                .onMessage(FolderClosed.class, m -> onFolderClosed(env, s, end, m))
                .onMessage(MemberChanged.class, m -> publishMember(env, s, m))
                .onMessage(SubscribersListed.class, m -> finished(env, s.withSubscribers(m.subscribers()), end))
                .onMessage(Control.class, m -> {
                    m.replyTo().tell(new RunControl.Reply(409, 0, "the run has ended"));
                    return Behaviors.same();
                })
                .onAnyMessage(m -> Behaviors.same())
                .build());
    }

    // ---- discovery ----

    private static RunState onWorkersListed(Env env, RunState s, WorkersListed m) {
        RunState.Workers workers = s.workers();
        for (ActorRef<WorkerProtocol.Command> w : m.listing().getServiceInstances(WorkerProtocol.SERVICE)) {
            if (!workers.asked().contains(w)) {
                env.tell(w, new WorkerProtocol.Identify(env.replies()));
                workers = workers.ask(w);
            }
        }
        return s.withWorkers(workers);
    }

    /** A newly identified worker, or a survivor with its new ring address, becomes available (a lost one never again). */
    private static Behavior<Object> onIdentified(Env env, RunState s, WorkerIdentified id, Function<RunState, Behavior<Object>> then) {
        if (s.workers().lost().contains(id.worker())) {
            return Behaviors.same();
        }
        RunState next = s.withWorkers(s.workers().identified(id));
        env.log().info("worker {} at {} ({} available, min {})", id.worker().path(), id.dataAddress(), next.workers().available().size(),
                env.settings().minWorkers());
        if (s.generation() >= 0) {
            env.publish(next, new TrainingEvent.WorkerJoined(env.runId(), id.worker().path().address().toString()));
        }
        return then.apply(next);
    }

    // ---- waiting, planning ----

    /** The first generation waits for the start count of workers, a later one for min_workers. */
    private static Behavior<Object> planWhenEnough(Env env, RunState s) {
        CoordinatorSettings cs = env.settings();
        if (s.workers().available().size() < (s.generation() < 0 ? cs.startWorkers() : cs.minWorkers())) {
            return waiting(env, s);
        }
        env.timers().cancel(Timeout.JOIN);
        env.timers().cancel(Timeout.REJOIN);
        return plan(env, s, s.generation() < 0 ? "start" : "rejoin: " + s.reason());
    }

    private static String tooFew(RunState s, int needed, Duration within) {
        return "only " + s.workers().available().size() + " of " + needed + " workers joined within " + seconds(within);
    }

    static Behavior<Object> waitForWorkers(Env env, RunState s, String why) {
        env.log().warn("{} of min_workers {} workers left ({}); waiting up to {} for more", s.workers().available().size(),
                env.settings().minWorkers(), why, seconds(env.settings().timeouts().rejoin()));
        env.timers().startSingleTimer(Timeout.REJOIN, env.settings().timeouts().rejoin());
        return waiting(env, s);
    }

    /** The next generation: its manifest is computed off the actor thread (hashing reads the files). */
    static Behavior<Object> plan(Env env, RunState previous, String reason) {
        RunState s = previous.nextGeneration(reason);
        CoordinatorSettings cs = env.settings();
        int world = Math.min(s.workers().available().size(), cs.maxWorkers());
        int gen = s.generation();
        if (gen == 0 && world == cs.startWorkers()) {
            env.ctx().getSelf().tell(new Planned(gen, PlanManifest.fromLines(cs.manifest()), cs.planHash(), null));
        } else {
            String resume = s.checkpoint();
            var blocking = env.ctx().getSystem().dispatchers().lookup(DispatcherSelector.blocking());
            CompletableFuture<PlanManifest> f = CompletableFuture.supplyAsync(() -> PlanManifest.compute(RunConfig.fromJson(cs.runConfig()),
                    world, resume.isEmpty() ? null : Path.of(resume)), blocking);
            env.ctx().pipeToSelf(f, (ok, err) -> new Planned(gen, ok, ok == null ? null : ok.hash(),
                    err == null ? null : String.valueOf(err)));
        }
        return planning(env, s);
    }

    // ---- live control ----

    /**
     * A user's request: refused (409) when it cannot apply (the run stops already; a pause of a paused
     * run, a resume of a running one, counting the requests still pending), else numbered, published,
     * kept pending and, while a generation runs ({@code running}), sent to every rank, the leaving ones
     * included: each rank counts what it received and the ranks apply a request only once all have it.
     */
    static RunState onControl(Env env, RunState s, Control m, boolean running) {
        RunControl.Request r = m.request();
        RunState.Controls c = s.controls();
        String refused = !s.stopping().isEmpty() || c.stopPending() || c.stopStep() >= 0 ? "the run is stopping already"
                : r.action() == RunControl.Action.PAUSE && c.pausedAfterPending() ? "the run is paused already"
                : r.action() == RunControl.Action.RESUME && !c.pausedAfterPending() ? "the run is not paused"
                : null;
        if (refused != null) {
            m.replyTo().tell(new RunControl.Reply(409, 0, r.action().wireName() + " refused: " + refused));
            return s;
        }
        var p = new RunState.Controls.Pending(c.lastSeq() + 1, r.action(), r.prompts(), r.promptsFormat());
        RunState next = s.withControls(c.requested(p));
        env.log().info("control #{}: {} requested ({})", p.seq(), r.action().wireName(), r.source());
        env.publish(next, new TrainingEvent.ControlRequested(env.runId(), p.seq(), r.action().wireName(), r.source()));
        if (running) {
            next = sendControl(env, next, p);
        }
        m.replyTo().tell(new RunControl.Reply(202, p.seq(), r.action().wireName() + " accepted as #" + p.seq()
                + (running ? ": every rank applies it at the next step boundary" : ": applied once the next generation runs")));
        return next;
    }

    /** Sends {@code p} to every rank of the running generation as its next request. */
    static RunState sendControl(Env env, RunState s, RunState.Controls.Pending p) {
        var msg = new WorkerProtocol.Control(env.runId(), s.generation(), s.controls().sent(), p.seq(), p.action(), p.prompts(),
                p.promptsFormat());
        s.ranks().forEach(w -> env.tell(w, msg));
        return s.withControls(s.controls().sentOne());
    }

    /**
     * A generation starts: every request still pending is sent again (a generation that ended first
     * never applied it), and sample prompts applied after the checkpoint it starts from; a paused run's
     * ranks were told to start paused (StartRun).
     */
    static RunState resendControls(Env env, RunState s) {
        RunState next = s.withControls(s.controls().newGeneration(s.checkpointStep()));
        for (RunState.Controls.Pending p : next.controls().pending()) {
            next = sendControl(env, next, p);
        }
        return next;
    }

    /** Rank 0 reports a request applied by every rank: published, logged in metrics.jsonl, no longer pending. */
    static RunState onControlApplied(Env env, RunState s, CoordinatorProtocol.ControlApplied m) {
        if (m.runId() != env.runId()) {
            return s;
        }
        RunState next = s.withControls(s.controls().applied(m.seq(), m.action(), m.step()));
        env.log().info("control #{}: {} applied after step {} {}", m.seq(), m.action().wireName(), m.step(), m.detail());
        env.publish(next, new TrainingEvent.ControlApplied(env.runId(), m.seq(), m.action().wireName(), m.step(), m.detail()));
        env.folder().tell(new RunFolder.AppendControl(m.step(), m.seq(), m.action().wireName(), m.detail()));
        return next;
    }

    // ---- membership ----

    private static Behavior<Object> onMemberChanged(Env env, RunState s, MemberChanged m,
            BiFunction<RunState, String, Behavior<Object>> afterLoss) {
        publishMember(env, s, m);
        Member member = m.event().member();
        return member.status() == MemberStatus.removed() ? onNodeLost(env, s, member.address(), "was removed from the cluster", afterLoss)
                : Behaviors.same();
    }

    private static Behavior<Object> publishMember(Env env, RunState s, MemberChanged m) {
        Member member = m.event().member();
        env.publish(s, new TrainingEvent.MemberChanged(member.address().toString(), String.join(",", member.getRoles()),
                m.event().getClass().getSimpleName()));
        return Behaviors.same();
    }

    /** The run's workers on the node at {@code a} are lost; the phase learns whether one of them held a rank. */
    private static Behavior<Object> onNodeLost(Env env, RunState s, Address a, String how,
            BiFunction<RunState, String, Behavior<Object>> afterLoss) {
        RunState next = s;
        boolean rankLost = false;
        for (ActorRef<WorkerProtocol.Command> w : s.workers().at(a, s.ranks())) {
            rankLost |= !next.workers().lost().contains(w) && s.ranks().contains(w);
            next = lose(env, next, w, how);
        }
        return afterLoss.apply(next, rankLost ? "worker " + a + " " + how : null);
    }

    /** {@code w} is lost for good: it leaves the available workers and never takes a rank again. */
    static RunState lose(Env env, RunState s, ActorRef<WorkerProtocol.Command> w, String how) {
        if (s.workers().lost().contains(w)) {
            return s;
        }
        env.log().warn("worker {} {}", w.path(), how);
        RunState next = s.withWorkers(s.workers().lose(w));
        env.publish(next, new TrainingEvent.WorkerLost(env.runId(), w.path().address().toString()));
        return next;
    }

    // ---- the end ----

    /** Every worker is told to stop; the end names the last committed checkpoint. */
    static Behavior<Object> fail(Env env, RunState s, String why) {
        stopEveryone(env, s, why);
        return finish(env, s, onDisk -> {
            String message = why + LAST_CHECKPOINT + s.lastCheckpoint(onDisk);
            env.log().error("run {} stopped: {}", env.runId(), message);
            return new RunFinished(env.runId(), false, message);
        });
    }

    /**
     * A rank met bad input (a file of its copies, a value) or halted (an op not exact on its machine,
     * too many skipped steps): no generation can get past it, so the run stops at once instead of
     * shrinking, and the launcher prints the rank's one line and exits with the rank's status (2 or 3),
     * as a single-process run does. Logged at INFO: the launcher's line is the one the user reads.
     */
    static Behavior<Object> failOnInput(Env env, RunState s, GenerationEnded e) {
        String message = "rank " + e.rank() + ": " + e.message();
        env.log().info("run {} stopped (status {}): {}", env.runId(), e.stopStatus(), message);
        stopEveryone(env, s, message);
        return finish(env, s, onDisk -> new RunFinished(env.runId(), false, message, e.stopStatus()));
    }

    private static void stopEveryone(Env env, RunState s, String why) {
        Set<ActorRef<WorkerProtocol.Command>> everyone = new HashSet<>(s.ranks());
        everyone.addAll(s.workers().available().keySet());
        everyone.forEach(w -> env.tell(w, new WorkerProtocol.StopRun(env.runId(), why)));
    }

    /**
     * Ends the run: metrics.jsonl is closed first, so a launcher that sees the end finds every line.
     *
     * @param end the end to publish, given the newest committed checkpoint on disk (see {@link RunFolder.Closed})
     */
    static Behavior<Object> finish(Env env, RunState s, Function<String, RunFinished> end) {
        env.timers().cancelAll();
        env.ctx().ask(RunFolder.Closed.class, env.folder(), CLOSE_WITHIN, RunFolder.Close::new,
                (closed, err) -> new FolderClosed(closed == null ? "unknown" : closed.newestCheckpoint(), err));
        return finished(env, s, end);
    }

    private static Behavior<Object> onFolderClosed(Env env, RunState s, Function<String, RunFinished> end, FolderClosed m) {
        if (m.error() != null) {
            env.log().warn("{} was not closed within {}: {}", env.settings().out().resolve(MetricsLog.FILE), seconds(CLOSE_WITHIN),
                    m.error().toString());
        }
        env.publish(s, end.apply(m.newestCheckpoint()));
        return Behaviors.same();
    }
}
