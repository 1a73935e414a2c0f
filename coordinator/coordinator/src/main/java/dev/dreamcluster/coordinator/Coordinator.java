package dev.dreamcluster.coordinator;

import akka.actor.Address;
import akka.actor.typed.ActorRef;
import akka.actor.typed.Behavior;
import akka.actor.typed.DispatcherSelector;
import akka.actor.typed.javadsl.ActorContext;
import akka.actor.typed.javadsl.Behaviors;
import akka.actor.typed.javadsl.TimerScheduler;
import akka.actor.typed.pubsub.Topic;
import akka.actor.typed.receptionist.Receptionist;
import akka.cluster.ClusterEvent;
import akka.cluster.typed.Cluster;
import akka.cluster.typed.Subscribe;
import com.fasterxml.jackson.databind.JsonNode;
import dev.dreamcluster.config.Json;
import dev.dreamcluster.config.RunConfig;
import dev.dreamcluster.io.MetricsLog;
import dev.dreamcluster.io.StepMetrics;
import dev.dreamcluster.plan.PlanManifest;
import dev.dreamcluster.protocol.CoordinatorProtocol;
import dev.dreamcluster.protocol.EventSubscribers;
import dev.dreamcluster.protocol.SenderGate;
import dev.dreamcluster.protocol.RunPlan;
import dev.dreamcluster.protocol.TrainingEvent;
import dev.dreamcluster.protocol.WorkerProtocol;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.stream.Stream;

/**
 * Drives one training run as a sequence of generations (run as a cluster singleton on role
 * "coordinator"). Each generation has a world (ranks), a plan hash and a ring, and starts from the
 * initial weights or the last committed checkpoint. Phases:
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
 */
public final class Coordinator {
    public sealed interface Command {}

    private record Listed(Receptionist.Listing listing) implements Command {}

    /** A worker's message and the node it came from (null: no sender); see {@link SenderGate}. */
    private record FromWorker(CoordinatorProtocol.Command message, Address from)
            implements Command, akka.actor.NoSerializationVerificationNeeded {}

    private record SubscribersListed(Receptionist.Listing listing) implements Command {}

    private record MemberChanged(ClusterEvent.MemberEvent event) implements Command {}

    private record ReachabilityChanged(ClusterEvent.ReachabilityEvent event) implements Command {}

    /** Local only (never crosses the network): exempt from serialize-messages checks. */
    private record Planned(int generation, PlanManifest manifest, String hash, String error)
            implements Command, akka.actor.NoSerializationVerificationNeeded {}

    private record TimedOut(String what, int generation) implements Command, akka.actor.NoSerializationVerificationNeeded {}

    /**
     * Stop the run, from this JVM only (the launcher): it has no serializer, so no other node can send
     * it (a remote Stop is dropped when it is deserialized).
     */
    public record Stop(String reason) implements Command, akka.actor.NoSerializationVerificationNeeded {}

    private final ActorContext<Command> ctx;
    private final TimerScheduler<Command> timers;
    private final CoordinatorSettings settings;
    private final ActorRef<Topic.Command<TrainingEvent>> events;
    private final ActorRef<CoordinatorProtocol.Command> replies;
    private final Set<ActorRef<WorkerProtocol.Command>> asked = new HashSet<>();
    /** Workers able to take a rank, with their current ring address, in arrival order. */
    private final Map<ActorRef<WorkerProtocol.Command>, String> available = new LinkedHashMap<>();
    /** What each worker offered for the data plane when it identified itself (an NCCL id on a GPU). */
    private final Map<ActorRef<WorkerProtocol.Command>, dev.dreamcluster.protocol.DataPlane.Offer> offers = new LinkedHashMap<>();
    private final List<ActorRef<WorkerProtocol.Command>> ranks = new ArrayList<>();
    private final Set<Integer> accepted = new HashSet<>();
    private final Set<Integer> finishedRanks = new HashSet<>();
    private final Set<Integer> answered = new HashSet<>();
    private final Set<ActorRef<WorkerProtocol.Command>> lost = new HashSet<>();
    private int generation = -1;
    private String lastCheckpoint;
    private int lastCheckpointStep;
    private String abortReason;
    private boolean growing;
    private RunPlan plan;
    private final Set<ActorRef<TrainingEvent>> subscribers = new HashSet<>();
    /** metrics.jsonl of the run, opened at the first step report. */
    private MetricsLog metrics;

    private Coordinator(ActorContext<Command> ctx, TimerScheduler<Command> timers, CoordinatorSettings settings) {
        this.ctx = ctx;
        this.timers = timers;
        this.settings = settings;
        this.lastCheckpoint = settings.resume();
        this.events = ctx.spawn(Topic.create(TrainingEvent.class, TrainingEvent.TOPIC), "events");
        this.replies = SenderGate.spawn(ctx, CoordinatorProtocol.Command.class, FromWorker::new, ctx.getSelf(), "replies");
        // one adapter per message class: both listings arrive through it
        ActorRef<Receptionist.Listing> listings = ctx.messageAdapter(Receptionist.Listing.class,
                l -> l.isForKey(EventSubscribers.SERVICE) ? new SubscribersListed(l) : new Listed(l));
        ctx.getSystem().receptionist().tell(Receptionist.subscribe(WorkerProtocol.SERVICE, listings));
        ctx.getSystem().receptionist().tell(Receptionist.subscribe(EventSubscribers.SERVICE, listings));
        Cluster cluster = Cluster.get(ctx.getSystem());
        cluster.subscriptions().tell(Subscribe.create(ctx.messageAdapter(ClusterEvent.MemberEvent.class, MemberChanged::new),
                ClusterEvent.MemberEvent.class));
        cluster.subscriptions().tell(Subscribe.create(ctx.messageAdapter(ClusterEvent.ReachabilityEvent.class, ReachabilityChanged::new),
                ClusterEvent.ReachabilityEvent.class));
    }

    public static Behavior<Command> create(CoordinatorSettings settings) {
        return Behaviors.setup(ctx -> Behaviors.withTimers(timers -> {
            Coordinator c = new Coordinator(ctx, timers, settings);
            timers.startSingleTimer(new TimedOut("join", 0), settings.timeouts().join());
            return c.waiting();
        }));
    }

    // ---- phases ----

    private Behavior<Command> waiting() {
        return Behaviors.receive(Command.class)
                .onMessage(Listed.class, this::onListed)
                .onMessage(SubscribersListed.class, this::onSubscribers)
                .onMessage(FromWorker.class, this::onWaitingReply)
                .onMessage(MemberChanged.class, this::onMemberIdle)
                .onMessage(ReachabilityChanged.class, this::onReachabilityIdle)
                .onMessage(TimedOut.class, this::onWaitingTimeout)
                .onMessage(Stop.class, this::onStop)
                .onMessage(Planned.class, m -> Behaviors.same())
                .build();
    }

    private Behavior<Command> planning() {
        return Behaviors.receive(Command.class)
                .onMessage(Listed.class, this::onListed)
                .onMessage(SubscribersListed.class, this::onSubscribers)
                .onMessage(FromWorker.class, this::onSpareReply)
                .onMessage(MemberChanged.class, this::onMemberIdle)
                .onMessage(ReachabilityChanged.class, this::onReachabilityIdle)
                .onMessage(Planned.class, this::onPlanned)
                .onMessage(TimedOut.class, m -> Behaviors.same())
                .onMessage(Stop.class, this::onStop)
                .build();
    }

    private Behavior<Command> assigning() {
        return Behaviors.receive(Command.class)
                .onMessage(Listed.class, this::onListed)
                .onMessage(SubscribersListed.class, this::onSubscribers)
                .onMessage(FromWorker.class, this::onAssigningReply)
                .onMessage(MemberChanged.class, this::onMember)
                .onMessage(ReachabilityChanged.class, this::onReachability)
                .onMessage(TimedOut.class, this::onAssigningTimeout)
                .onMessage(Stop.class, this::onStop)
                .onMessage(Planned.class, m -> Behaviors.same())
                .build();
    }

    private Behavior<Command> running() {
        return Behaviors.receive(Command.class)
                .onMessage(Listed.class, this::onListed)
                .onMessage(SubscribersListed.class, this::onSubscribers)
                .onMessage(FromWorker.class, this::onRunningReport)
                .onMessage(MemberChanged.class, this::onMember)
                .onMessage(ReachabilityChanged.class, this::onReachability)
                .onMessage(Stop.class, this::onStop)
                .onMessage(TimedOut.class, m -> Behaviors.same())
                .onMessage(Planned.class, m -> Behaviors.same())
                .build();
    }

    private Behavior<Command> aborting() {
        return Behaviors.receive(Command.class)
                .onMessage(Listed.class, this::onListed)
                .onMessage(SubscribersListed.class, this::onSubscribers)
                .onMessage(FromWorker.class, this::onAbortingReply)
                .onMessage(MemberChanged.class, this::onMemberAborting)
                .onMessage(ReachabilityChanged.class, this::onReachabilityAborting)
                .onMessage(TimedOut.class, this::onAbortTimeout)
                .onMessage(Stop.class, this::onStop)
                .onMessage(Planned.class, m -> Behaviors.same())
                .build();
    }

    private Behavior<Command> finished() {
        if (metrics != null) {
            metrics.close();
            metrics = null;
        }
        timers.cancelAll();
        return Behaviors.receive(Command.class)
                .onMessage(MemberChanged.class, this::onMemberAfterRun)
                .onMessage(SubscribersListed.class, this::onSubscribers)
                .onAnyMessage(m -> Behaviors.same())
                .build();
    }

    // ---- discovery (every phase) ----

    private Behavior<Command> onListed(Listed m) {
        for (ActorRef<WorkerProtocol.Command> w : m.listing().getServiceInstances(WorkerProtocol.SERVICE)) {
            if (asked.add(w)) {
                SenderGate.tell(w, new WorkerProtocol.Identify(replies), ctx.getSelf());
            }
        }
        return Behaviors.same();
    }

    /** A newly identified worker (or a survivor reporting its new ring address) becomes available. */
    private boolean addAvailable(FromWorker f) {
        if (f.message() instanceof CoordinatorProtocol.WorkerIdentified id && !lost.contains(id.worker()) && mayTakeARank(id, f.from())) {
            available.put(id.worker(), id.dataAddress());
            offers.put(id.worker(), id.offer());
            ctx.getLog().info("worker {} at {} ({} available, min {})", id.worker().path(), id.dataAddress(), available.size(),
                    settings.minWorkers());
            if (generation >= 0) {
                publish(new TrainingEvent.WorkerJoined(settings.runId(), id.worker().path().address().toString()));
            }
            return true;
        }
        return false;
    }

    // ---- waiting ----

    private Behavior<Command> onWaitingReply(FromWorker m) {
        int needed = generation < 0 ? settings.startWorkers() : settings.minWorkers();
        if (addAvailable(m) && available.size() >= needed) {
            timers.cancel(new TimedOut("join", 0));
            return plan(generation < 0 ? "start" : "rejoin: " + abortReason);
        }
        return Behaviors.same();
    }

    private Behavior<Command> onWaitingTimeout(TimedOut t) {
        if (t.what().equals("join") || t.what().equals("rejoin")) {
            return fail("only " + available.size() + " of " + (t.what().equals("join") ? settings.startWorkers() : settings.minWorkers())
                    + " workers joined within "
                    + seconds(t.what().equals("join") ? settings.timeouts().join() : settings.timeouts().rejoin()));
        }
        return Behaviors.same();
    }

    // ---- planning ----

    /** The next generation: its manifest is computed off the actor thread (hashing reads the files). */
    private Behavior<Command> plan(String reason) {
        generation++;
        abortReason = reason;
        int world = Math.min(available.size(), settings.maxWorkers());
        int gen = generation;
        String resume = lastCheckpoint;
        if (gen == 0 && world == settings.startWorkers()) {
            ctx.getSelf().tell(new Planned(gen, PlanManifest.fromLines(settings.manifest()), settings.planHash(), null));
        } else {
            CompletableFuture<PlanManifest> f = CompletableFuture.supplyAsync(() -> PlanManifest.compute(
                    RunConfig.fromJson(settings.runConfig()), world, resume.isEmpty() ? null : Path.of(resume)),
                    ctx.getSystem().dispatchers().lookup(DispatcherSelector.blocking()));
            ctx.pipeToSelf(f, (ok, err) -> new Planned(gen, ok, ok == null ? null : ok.hash(), err == null ? null : String.valueOf(err)));
        }
        return planning();
    }

    private Behavior<Command> onSpareReply(FromWorker m) {
        addAvailable(m);
        return Behaviors.same();
    }

    /** Ranks in a deterministic order (actor path), then the plan to every rank. */
    private Behavior<Command> onPlanned(Planned p) {
        if (p.generation() != generation) {
            return Behaviors.same();
        }
        if (p.error() != null) {
            return fail("cannot compute the plan for generation " + generation + ": " + p.error());
        }
        int world = p.manifest().entries().containsKey("world") ? Integer.parseInt(p.manifest().entries().get("world"))
                : settings.minWorkers();
        if (available.size() < world) {
            return waitForWorkers("workers left while the plan was computed");
        }
        ranks.clear();
        accepted.clear();
        finishedRanks.clear();
        answered.clear();
        available.keySet().stream().sorted(Comparator.comparing(r -> r.path().toString())).limit(world).forEach(ranks::add);
        List<String> peers = ranks.stream().map(available::get).toList();
        dev.dreamcluster.protocol.DataPlane dataPlane = dev.dreamcluster.protocol.DataPlane.RING;
        if (generation == 0) {
            // rank 0's NCCL id when every rank offers one (and --collective allows), else the ring. An NCCL id serves
            // one communicator: later generations (whose workers offered theirs once, at the start) use the ring.
            try {
                dataPlane = dev.dreamcluster.protocol.DataPlane.choose(settings.collective(), ranks.stream().map(offers::get).toList(),
                        line -> ctx.getLog().info(line));
            } catch (dev.dreamcluster.config.ConfigError e) {
                return fail(e.getMessage());
            }
        }
        plan = new RunPlan(settings.runId(), generation, p.hash(), p.manifest().lines(), peers, settings.runConfig(),
                lastCheckpoint, dev.dreamcluster.collective.RingCollective.newSecret(), dataPlane);
        for (int r = 0; r < ranks.size(); r++) {
            SenderGate.tell(ranks.get(r), new WorkerProtocol.AssignPlan(plan, r, replies), ctx.getSelf());
        }
        timers.startSingleTimer(new TimedOut("accept", generation), settings.timeouts().accept());
        return assigning();
    }

    // ---- assigning ----

    private Behavior<Command> onAssigningReply(FromWorker m) {
        if (addAvailable(m)) {
            return Behaviors.same();
        }
        if (!fromItsRank(m)) {
            return Behaviors.same();
        }
        if (m.message() instanceof CoordinatorProtocol.PlanAccepted a && a.runId() == settings.runId()) {
            accepted.add(a.rank());
            if (accepted.size() == ranks.size()) {
                timers.cancel(new TimedOut("accept", generation));
                ranks.forEach(w -> SenderGate.tell(w, new WorkerProtocol.StartRun(settings.runId()), ctx.getSelf()));
                if (generation == 0) {
                    publish(new TrainingEvent.RunStarted(settings.runId(), ranks.size(), plan.planHash(),
                            totalSteps()));
                }
                if (metrics != null) {
                    metrics.restart(); // steps after the checkpoint are trained again: their old lines go
                }
                publish(new TrainingEvent.GenerationStarted(settings.runId(), generation, ranks.size(),
                        lastCheckpointStep, plan.planHash(), abortReason));
                ctx.getLog().info("generation {} started: {} workers from step {} ({})", generation, ranks.size(), lastCheckpointStep,
                        abortReason);
                return running();
            }
        } else if (m.message() instanceof CoordinatorProtocol.PlanRefused r && r.runId() == settings.runId()) {
            return fail("rank " + r.rank() + " refused the plan: " + r.reason());
        } else if (m.message() instanceof CoordinatorProtocol.GenerationEnded e && e.generation() == generation) {
            return e.stopStatus() != 0 ? failOnInput(e) : abort("rank " + e.rank() + " failed before the start: " + e.message());
        }
        return Behaviors.same();
    }

    private Behavior<Command> onAssigningTimeout(TimedOut t) {
        if (t.what().equals("accept") && t.generation() == generation) {
            return fail("not every rank answered the plan within " + seconds(settings.timeouts().accept()) + " (accepted: "
                    + accepted.size() + " of " + ranks.size() + ")");
        }
        return Behaviors.same();
    }

    // ---- running ----

    private Behavior<Command> onRunningReport(FromWorker m) {
        CoordinatorProtocol.Command c = m.message();
        if (addAvailable(m)) {
            return Behaviors.same();
        }
        if (!fromItsRank(m)) {
            return Behaviors.same();
        }
        if (c instanceof CoordinatorProtocol.StepReported s && s.runId() == settings.runId() && s.rank() < ranks.size()) {
            publish(new TrainingEvent.WorkerStepCompleted(s.runId(), s.rank(),
                    ranks.get(s.rank()).path().address().toString(), s.step(), s.samplesPerS(), s.computeSeconds(), s.commSeconds(),
                    s.optimizerSeconds()));
        }
        if (c instanceof CoordinatorProtocol.StepReported s && s.runId() == settings.runId() && s.rank() == 0) {
            TrainingEvent.StepCompleted e = new TrainingEvent.StepCompleted(s.runId(), s.step(), s.loss(), s.lrUnet(),
                    s.lrTextEncoder(), s.gradNorm(), s.samplesPerS(), s.computeSeconds(), s.commSeconds(), s.optimizerSeconds(),
                    s.valLoss(), s.skipped());
            if (s.skipped() != null) {
                ctx.getLog().warn("step {}: update skipped: {}", s.step(), s.skipped());
            }
            publish(e);
            appendMetrics(e);
        } else if (c instanceof CoordinatorProtocol.CheckpointCommitted k && k.runId() == settings.runId()
                && k.generation() == generation) {
            lastCheckpoint = k.path();
            lastCheckpointStep = k.step();
            if (k.step() < k.totalSteps() && ranks.size() < settings.maxWorkers() && available.size() > ranks.size()) {
                growing = true;
                return abort("grow: " + (available.size() - ranks.size()) + " worker(s) waiting, admitted at step " + k.step());
            }
        } else if (c instanceof CoordinatorProtocol.GenerationEnded e && e.runId() == settings.runId()
                && e.generation() == generation) {
            answered.add(e.rank());
            available.put(e.worker(), e.dataAddress());
            return e.stopStatus() != 0 ? failOnInput(e) : abort("rank " + e.rank() + " failed: " + e.message());
        } else if (c instanceof CoordinatorProtocol.RunEnded e && e.runId() == settings.runId()) {
            if (!e.ok()) {
                return fail("rank " + e.rank() + " failed: " + e.message());
            }
            finishedRanks.add(e.rank());
            if (finishedRanks.size() == ranks.size()) {
                publish(new TrainingEvent.RunFinished(settings.runId(), true,
                        "finished; model in " + settings.out().resolve("final") + " (on rank 0's node)"));
                return finished();
            }
        }
        return Behaviors.same();
    }

    private void appendMetrics(TrainingEvent.StepCompleted e) {
        try {
            if (metrics == null) {
                metrics = new MetricsLog(settings.out());
            }
            metrics.append(new StepMetrics(e.step(), e.loss(), e.lrUnet(), e.lrTextEncoder(), e.gradNorm(), e.samplesPerS(),
                    e.computeSeconds(), e.commSeconds(), e.optimizerSeconds(), e.valLoss(), e.skipped()));
        } catch (java.io.UncheckedIOException ex) {
            ctx.getLog().warn("cannot append to {}: {}", settings.out().resolve(MetricsLog.FILE), ex.getCause().toString());
        }
    }

    // ---- aborting ----

    /** Ends the current generation: every rank not known lost is told to stop and must answer. */
    private Behavior<Command> abort(String reason) {
        abortReason = reason;
        ctx.getLog().warn("generation {} ends: {}", generation, reason);
        for (int r = 0; r < ranks.size(); r++) {
            if (!answered.contains(r) && !lost.contains(ranks.get(r))) {
                SenderGate.tell(ranks.get(r), new WorkerProtocol.AbortGeneration(settings.runId(), generation, reason), ctx.getSelf());
            }
        }
        timers.startSingleTimer(new TimedOut("abort", generation), settings.timeouts().abort());
        return abortDone() ? next() : aborting();
    }

    private Behavior<Command> onAbortingReply(FromWorker m) {
        CoordinatorProtocol.Command c = m.message();
        if (addAvailable(m)) {
            return Behaviors.same();
        }
        if (!fromItsRank(m)) {
            return Behaviors.same();
        }
        if (c instanceof CoordinatorProtocol.GenerationEnded e && e.runId() == settings.runId() && e.generation() == generation) {
            if (e.stopStatus() != 0) {
                return failOnInput(e);
            }
            answered.add(e.rank());
            available.put(e.worker(), e.dataAddress());
        } else if (c instanceof CoordinatorProtocol.RunEnded e && e.runId() == settings.runId() && e.ok()) {
            answered.add(e.rank()); // it finished the last step as the others aborted: it leaves
            available.remove(ranks.get(e.rank()));
        }
        return abortDone() ? next() : Behaviors.same();
    }

    private boolean abortDone() {
        for (int r = 0; r < ranks.size(); r++) {
            if (!answered.contains(r) && !lost.contains(ranks.get(r))) {
                return false;
            }
        }
        return true;
    }

    private Behavior<Command> onAbortTimeout(TimedOut t) {
        if (!t.what().equals("abort") || t.generation() != generation) {
            return Behaviors.same();
        }
        for (int r = 0; r < ranks.size(); r++) {
            if (!answered.contains(r)) {
                markLost(ranks.get(r), "did not answer the abort within " + seconds(settings.timeouts().abort()));
            }
        }
        return next();
    }

    /** After an abort: the next generation if enough workers remain, else wait for new ones. */
    private Behavior<Command> next() {
        timers.cancel(new TimedOut("abort", generation));
        boolean anyLost = ranks.stream().anyMatch(lost::contains);
        if (!anyLost && !growing) {
            return fail(abortReason); // every rank is alive: the failure is in the run itself, not the cluster
        }
        growing = false;
        if (available.size() >= settings.minWorkers()) {
            return plan(abortReason);
        }
        return waitForWorkers(abortReason);
    }

    private Behavior<Command> waitForWorkers(String why) {
        ctx.getLog().warn("{} of min_workers {} workers left ({}); waiting up to {} for more", available.size(),
                settings.minWorkers(), why, seconds(settings.timeouts().rejoin()));
        timers.startSingleTimer(new TimedOut("rejoin", generation), settings.timeouts().rejoin());
        return waiting();
    }

    // ---- who may say what (SenderGate) ----

    /** Only a worker actor on a member with the "worker" role, answering for itself, takes a rank. */
    private boolean mayTakeARank(CoordinatorProtocol.WorkerIdentified id, Address from) {
        Address node = nodeOf(id.worker());
        if (from == null || !from.equals(node)) {
            ctx.getLog().warn("ignoring a worker identification for {} sent by {}", id.worker().path(), from == null ? "no sender" : from);
            return false;
        }
        Set<String> roles = SenderGate.rolesOf(ctx.getSystem(), node);
        if (!roles.contains("worker")) {
            ctx.getLog().warn("ignoring worker {}: its node has roles {} (only 'worker' nodes take ranks)", id.worker().path(), roles);
            return false;
        }
        return true;
    }

    /** A report counts only if it comes from the node of the rank it names (a checkpoint: rank 0). */
    private boolean fromItsRank(FromWorker m) {
        CoordinatorProtocol.Command c = m.message();
        int rank = c instanceof CoordinatorProtocol.PlanAccepted a ? a.rank()
                : c instanceof CoordinatorProtocol.PlanRefused r ? r.rank()
                : c instanceof CoordinatorProtocol.StepReported s ? s.rank()
                : c instanceof CoordinatorProtocol.RunEnded e ? e.rank()
                : c instanceof CoordinatorProtocol.GenerationEnded g ? g.rank()
                : c instanceof CoordinatorProtocol.CheckpointCommitted ? 0 : -1;
        if (rank >= 0 && rank < ranks.size() && m.from() != null && m.from().equals(nodeOf(ranks.get(rank)))) {
            return true;
        }
        if (rank >= 0) {
            ctx.getLog().warn("ignoring {} for rank {} from {}: not that rank's node", c.getClass().getSimpleName(), rank,
                    m.from() == null ? "no sender" : m.from());
        }
        return false;
    }

    private Address nodeOf(ActorRef<?> ref) {
        Address a = ref.path().address();
        return a.hasLocalScope() ? Cluster.get(ctx.getSystem()).selfMember().address() : a;
    }

    private Behavior<Command> onSubscribers(SubscribersListed m) {
        subscribers.clear();
        subscribers.addAll(m.listing().getServiceInstances(EventSubscribers.SERVICE));
        return Behaviors.same();
    }

    /** On the open topic (watching only) and, with this actor as the sender, to every trusted subscriber. */
    private void publish(TrainingEvent e) {
        events.tell(Topic.publish(e));
        subscribers.forEach(s -> SenderGate.tell(s, e, ctx.getSelf()));
    }

    // ---- membership and failure ----

    /** assigning, running: a lost rank ends the generation. */
    private Behavior<Command> onMember(MemberChanged m) {
        onMemberAfterRun(m);
        return m.event() instanceof ClusterEvent.MemberRemoved r ? onRankLost(r.member().address(), "was removed from the cluster")
                : Behaviors.same();
    }

    private Behavior<Command> onReachability(ReachabilityChanged m) {
        return m.event() instanceof ClusterEvent.UnreachableMember u ? onRankLost(u.member().address(), "became unreachable")
                : Behaviors.same();
    }

    private Behavior<Command> onRankLost(Address a, String how) {
        boolean rankLost = false;
        for (ActorRef<WorkerProtocol.Command> w : workersAt(a)) {
            rankLost |= markLost(w, how) && ranks.contains(w);
        }
        return rankLost ? abort("worker " + a + " " + how) : Behaviors.same();
    }

    /** The workers of this run on the node at {@code a} (one per JVM in practice). */
    private List<ActorRef<WorkerProtocol.Command>> workersAt(Address a) {
        Set<ActorRef<WorkerProtocol.Command>> all = new java.util.LinkedHashSet<>(ranks);
        all.addAll(available.keySet());
        return all.stream().filter(w -> w.path().address().equals(a)).toList();
    }

    /** waiting, planning: a lost worker is no longer available. */
    private Behavior<Command> onMemberIdle(MemberChanged m) {
        onMemberAfterRun(m);
        if (m.event() instanceof ClusterEvent.MemberRemoved r) {
            workersAt(r.member().address()).forEach(w -> markLost(w, "was removed from the cluster"));
        }
        return Behaviors.same();
    }

    private Behavior<Command> onReachabilityIdle(ReachabilityChanged m) {
        if (m.event() instanceof ClusterEvent.UnreachableMember u) {
            workersAt(u.member().address()).forEach(w -> markLost(w, "became unreachable"));
        }
        return Behaviors.same();
    }

    /** aborting: a lost rank no longer has to answer. */
    private Behavior<Command> onMemberAborting(MemberChanged m) {
        onMemberIdle(m);
        return abortDone() ? next() : Behaviors.same();
    }

    private Behavior<Command> onReachabilityAborting(ReachabilityChanged m) {
        onReachabilityIdle(m);
        return abortDone() ? next() : Behaviors.same();
    }

    /** Membership is still published after the run (workers leaving), but nothing is lost any more. */
    private Behavior<Command> onMemberAfterRun(MemberChanged m) {
        var member = m.event().member();
        publish(new TrainingEvent.MemberChanged(member.address().toString(), String.join(",", member.getRoles()),
                m.event().getClass().getSimpleName()));
        return Behaviors.same();
    }

    /** True when {@code w} was not yet known lost. */
    private boolean markLost(ActorRef<WorkerProtocol.Command> w, String how) {
        if (!lost.add(w)) {
            return false;
        }
        available.remove(w);
        ctx.getLog().warn("worker {} {}", w.path(), how);
        publish(new TrainingEvent.WorkerLost(settings.runId(), w.path().address().toString()));
        return true;
    }

    private Behavior<Command> onStop(Stop s) {
        return fail("stopped: " + s.reason());
    }

    /** Tells every worker to stop and publishes the end, naming the last committed checkpoint. */
    private Behavior<Command> fail(String why) {
        String message = why + "; last committed checkpoint: " + lastCheckpoint();
        ctx.getLog().error("run {} stopped: {}", settings.runId(), message);
        return stopEveryone(why, new TrainingEvent.RunFinished(settings.runId(), false, message));
    }

    /**
     * A rank met bad input (a file of its copies, a value) or halted (an op not exact on its machine,
     * too many skipped steps): no generation can get past it, so the run stops at once instead of
     * shrinking, and the launcher prints the rank's one line and exits with the rank's status (2 or 3),
     * as a single-process run does. Logged at INFO: the launcher's line is the one the user reads.
     */
    private Behavior<Command> failOnInput(CoordinatorProtocol.GenerationEnded e) {
        String message = "rank " + e.rank() + ": " + e.message();
        ctx.getLog().info("run {} stopped (status {}): {}", settings.runId(), e.stopStatus(), message);
        return stopEveryone(message, new TrainingEvent.RunFinished(settings.runId(), false, message, e.stopStatus()));
    }

    private Behavior<Command> stopEveryone(String why, TrainingEvent.RunFinished end) {
        Set<ActorRef<WorkerProtocol.Command>> everyone = new HashSet<>(ranks);
        everyone.addAll(available.keySet());
        everyone.forEach(w -> SenderGate.tell(w, new WorkerProtocol.StopRun(settings.runId(), why), ctx.getSelf()));
        publish(end);
        return finished();
    }

    /**
     * The run's length for monitors: train_config.max_steps of the resolved config, 0 when the run is
     * sized by epochs (the workers count those) or the value is not there. Read as a plain JSON path
     * so that a partial config (the actor tests send one) never fails the run.
     */
    private int totalSteps() {
        try {
            JsonNode max = Json.MAPPER.readTree(settings.runConfig()).path("train_config").path("max_steps");
            return max.isInt() ? max.asInt() : 0;
        } catch (IOException e) {
            return 0;
        }
    }

    private String lastCheckpoint() {
        if (lastCheckpoint != null && !lastCheckpoint.isEmpty() && generation >= 0 && lastCheckpointStep > 0) {
            return lastCheckpoint;
        }
        Path dir = settings.out().resolve("checkpoints");
        if (!Files.isDirectory(dir)) {
            return lastCheckpoint == null || lastCheckpoint.isEmpty() ? "none" : lastCheckpoint;
        }
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(p -> p.getFileName().toString().startsWith("step-")).filter(p -> Files.exists(p.resolve("trainer_state.json")))
                    .map(Path::toString).sorted().reduce((a, b) -> b).orElse("none");
        } catch (IOException e) {
            return "unknown (" + e.getMessage() + ")";
        }
    }

    private static String seconds(Duration d) {
        return d.toSeconds() + " s";
    }
}
