package dev.dreamcluster.worker.node;

import akka.actor.Address;
import akka.actor.typed.ActorRef;
import akka.actor.typed.Behavior;
import akka.actor.typed.DispatcherSelector;
import akka.actor.typed.javadsl.ActorContext;
import akka.actor.typed.javadsl.Behaviors;
import akka.actor.typed.receptionist.Receptionist;
import akka.cluster.ClusterEvent;
import akka.cluster.typed.Cluster;
import akka.cluster.typed.Subscribe;
import dev.dreamcluster.config.RunConfig;
import dev.dreamcluster.plan.PlanManifest;
import dev.dreamcluster.protocol.CoordinatorProtocol;
import dev.dreamcluster.protocol.RunPlan;
import dev.dreamcluster.protocol.SenderGate;
import dev.dreamcluster.protocol.WorkerProtocol;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;

/**
 * One worker (one per GPU or CPU process). The actor only handles the protocol; phases:
 *
 * <pre>
 *   idle      registered with the Receptionist, answers Identify with its ring address; between two
 *             generations of a run it waits here for the next plan
 *   planned   a plan arrived, was checked against this node's own copies (off the actor thread:
 *             hashing a model reads it) and accepted; waiting for StartRun
 *   running   the ComputeThread trains; AbortGeneration stops it (the node stays for the next
 *             generation), StopRun stops it and ends the node
 * </pre>
 *
 * A lost coordinator (unreachable or removed) ends the node at once, whatever the phase.
 */
public final class Worker {
    public sealed interface Command {}

    /** A protocol message and the node it came from (null: no sender); see {@link SenderGate}. */
    private record Remote(WorkerProtocol.Command message, Address from)
            implements Command, akka.actor.NoSerializationVerificationNeeded {}

    /** This node's manifest for a plan, computed on the blocking dispatcher (or why it could not be). */
    private record PlanChecked(WorkerProtocol.AssignPlan assign, Address from, RunConfig run, String differences, String error)
            implements Command, akka.actor.NoSerializationVerificationNeeded {}

    private record MemberChanged(ClusterEvent.MemberEvent event) implements Command {}

    /** The leader has had {@link #LEAVE_WAIT} to move this ending node to Exiting: it terminates now. */
    private record LeaveWaitOver() implements Command {}

    /** How long an ending node waits for the leader to take its leave (a few gossip rounds). */
    private static final java.time.Duration LEAVE_WAIT = java.time.Duration.ofSeconds(3);

    /**
     * This node is going away (its JVM got SIGTERM; sent by the node's shutdown task, on this JVM only).
     * A running rank asks every rank to stop after the step in flight with a checkpoint, tells the
     * coordinator it is leaving, and completes {@code done} once its part of the generation is over
     * (the checkpoint committed, or the generation ended otherwise); in any other phase there is
     * nothing in flight to save, and {@code done} completes at once.
     */
    public record Leave(String reason, CompletableFuture<Void> done) implements Command, akka.actor.NoSerializationVerificationNeeded {}

    private record ReachabilityChanged(ClusterEvent.ReachabilityEvent event) implements Command {}

    /** The compute thread ended (normally or not). */
    /**
     * {@code stopStatus}: 0 when the compute thread failed on the cluster (a lost peer, an abort); 2 on
     * bad input (a ConfigError), 3 when the run halted (a TrainingHalted): a new generation would fail
     * the same way.
     */
    public record ComputeEnded(boolean ok, String message, int stopStatus) implements Command {
        public ComputeEnded(boolean ok, String message) {
            this(ok, message, 0);
        }
    }

    private final ActorContext<Command> ctx;
    private final RingEndpoint ringEndpoint;
    private final LocalPaths paths;
    private final CompletableFuture<ComputeEnded> ended;
    private final ActorRef<WorkerProtocol.Command> self;
    /** This worker's --device and its data-plane offer (an NCCL id on a GPU). */
    private final WorkerCompute workerCompute;
    private RingEndpoint.Opened ring;
    /** The coordinator of the run this node belongs to (null before its first plan). */
    private ActorRef<CoordinatorProtocol.Command> coordinator;
    private long runId;
    /** The node that sent the accepted plan: the only one whose later commands count. */
    private Address coordinatorNode;

    private Worker(ActorContext<Command> ctx, RingEndpoint ringEndpoint, LocalPaths paths, CompletableFuture<ComputeEnded> ended,
            WorkerCompute workerCompute) {
        this.ctx = ctx;
        this.workerCompute = workerCompute;
        this.ringEndpoint = ringEndpoint;
        this.paths = paths;
        this.ended = ended;
        this.ring = ringEndpoint.open();
        this.self = SenderGate.spawn(ctx, WorkerProtocol.Command.class, Remote::new, ctx.getSelf(), "inbox");
        ctx.getSystem().receptionist().tell(Receptionist.register(WorkerProtocol.SERVICE, self));
        Cluster cluster = Cluster.get(ctx.getSystem());
        cluster.subscriptions().tell(Subscribe.create(ctx.messageAdapter(ClusterEvent.MemberEvent.class, MemberChanged::new),
                ClusterEvent.MemberEvent.class));
        cluster.subscriptions().tell(Subscribe.create(ctx.messageAdapter(ClusterEvent.ReachabilityEvent.class, ReachabilityChanged::new),
                ClusterEvent.ReachabilityEvent.class));
    }

    /**
     * @param ringEndpoint where this worker's ring socket listens and what peers dial
     * @param paths this node's copies of the model, data and checkpoint, and its output folder
     * @param ended completed with how the run ended on this node; the actor system is terminated then
     */
    public static Behavior<Command> create(RingEndpoint ringEndpoint, LocalPaths paths, CompletableFuture<ComputeEnded> ended) {
        return create(ringEndpoint, paths, ended, WorkerCompute.cpu());
    }

    /** @param workerCompute this worker's --device and its data-plane offer (an NCCL id on a GPU) */
    public static Behavior<Command> create(RingEndpoint ringEndpoint, LocalPaths paths, CompletableFuture<ComputeEnded> ended,
            WorkerCompute workerCompute) {
        return Behaviors.setup(ctx -> new Worker(ctx, ringEndpoint, paths, ended, workerCompute).idle());
    }

    // ---- idle ----

    private Behavior<Command> idle() {
        return Behaviors.receive(Command.class)
                .onMessage(Remote.class, this::onIdleRemote)
                .onMessage(PlanChecked.class, this::onPlanChecked)
                .onMessage(Leave.class, Worker::leaveAtOnce)
                .onMessage(MemberChanged.class, this::onMember)
                .onMessage(ReachabilityChanged.class, this::onReachability)
                .build();
    }

    private Behavior<Command> onIdleRemote(Remote m) {
        WorkerProtocol.Command c = m.message();
        if (!(c instanceof WorkerProtocol.Identify) && !fromCoordinator(c, m.from())) {
            return Behaviors.same();
        }
        if (c instanceof WorkerProtocol.Identify id) {
            SenderGate.tell(id.replyTo(), new CoordinatorProtocol.WorkerIdentified(self, ring.address(), workerCompute.offer()), ctx.getSelf());
        } else if (c instanceof WorkerProtocol.AssignPlan a) {
            Address from = m.from();
            CompletionStage<PlanChecked> check = CompletableFuture.supplyAsync(() -> check(a, from),
                    ctx.getSystem().dispatchers().lookup(DispatcherSelector.blocking()));
            ctx.pipeToSelf(check, (ok, err) -> ok != null ? ok : new PlanChecked(a, from, null, null, String.valueOf(err)));
        } else if (c instanceof WorkerProtocol.StopRun s && (coordinator == null || s.runId() == runId)) {
            // between generations, or never planned (the run failed before this worker got a rank)
            return end(new ComputeEnded(false, "the run was stopped: " + s.reason()));
        }
        return Behaviors.same();
    }

    /** Recomputes the plan manifest from this node's files and the plan's run config (blocking: reads and hashes). */
    private PlanChecked check(WorkerProtocol.AssignPlan a, Address from) {
        try {
            RunConfig run = paths.apply(RunConfig.fromJson(a.plan().runConfig()));
            PlanManifest mine = PlanManifest.compute(run, a.plan().worldSize(), paths.resume(a.plan()));
            String diff = mine.hash().equals(a.plan().planHash()) ? ""
                    : mine.differences(PlanManifest.fromLines(a.plan().manifest()), 5);
            if (diff.isEmpty() && !mine.hash().equals(a.plan().planHash())) {
                diff = "plan hash " + mine.hash() + " here, " + a.plan().planHash() + " at the coordinator";
            }
            return new PlanChecked(a, from, run, diff, null);
        } catch (RuntimeException e) {
            return new PlanChecked(a, from, null, null, e.getMessage() == null ? e.toString() : e.getMessage());
        }
    }

    private Behavior<Command> onPlanChecked(PlanChecked c) {
        RunPlan plan = c.assign().plan();
        String why = c.error() != null ? "cannot read this node's copy of the run's inputs: " + c.error()
                : c.differences().isEmpty() ? null : "this node's plan differs: " + c.differences();
        if (why != null) {
            ctx.getLog().error("refusing run {}: {}", plan.runId(), why);
            SenderGate.tell(c.assign().replyTo(), new CoordinatorProtocol.PlanRefused(plan.runId(), c.assign().rank(), why), ctx.getSelf());
            return Behaviors.same();
        }
        coordinator = c.assign().replyTo();
        coordinatorNode = c.from();
        runId = plan.runId();
        ctx.getLog().info("run {} generation {} rank {} of {}: run config {}", plan.runId(), plan.generation(), c.assign().rank(),
                plan.worldSize(), c.run().toJson());
        SenderGate.tell(coordinator, new CoordinatorProtocol.PlanAccepted(plan.runId(), c.assign().rank()), ctx.getSelf());
        return new Planned(plan, c.assign().rank(), c.run()).behavior();
    }

    // ---- planned ----

    /** Accepted a plan; waiting for StartRun. */
    private final class Planned {
        final RunPlan plan;
        final int rank;
        final RunConfig run;

        Planned(RunPlan plan, int rank, RunConfig run) {
            this.plan = plan;
            this.rank = rank;
            this.run = run;
        }

        Behavior<Command> behavior() {
            return Behaviors.receive(Command.class)
                    .onMessage(Remote.class, this::onRemote)
                    .onMessage(PlanChecked.class, m -> Behaviors.same())
                    .onMessage(Leave.class, Worker::leaveAtOnce)
                    .onMessage(MemberChanged.class, Worker.this::onMember)
                    .onMessage(ReachabilityChanged.class, Worker.this::onReachability)
                    .build();
        }

        Behavior<Command> onRemote(Remote m) {
            WorkerProtocol.Command c = m.message();
            if (!(c instanceof WorkerProtocol.Identify) && !fromCoordinator(c, m.from())) {
                return Behaviors.same();
            }
            if (c instanceof WorkerProtocol.StartRun s && s.runId() == plan.runId()) {
                ComputeThread compute = new ComputeThread(plan, rank, run, paths.resume(plan), ring.server(), coordinator,
                        ctx.getSelf(), workerCompute, s.paused());
                compute.start();
                return new Running(plan, rank, compute).behavior();
            }
            if (c instanceof WorkerProtocol.AbortGeneration a && a.runId() == plan.runId() && a.generation() == plan.generation()) {
                return generationEnded(plan, rank, "aborted before the start: " + a.reason(), 0);
            }
            if (c instanceof WorkerProtocol.StopRun s && s.runId() == plan.runId()) {
                return end(new ComputeEnded(false, "the run was stopped before it started: " + s.reason()));
            }
            if (c instanceof WorkerProtocol.Identify id) {
                SenderGate.tell(id.replyTo(), new CoordinatorProtocol.WorkerIdentified(self, ring.address(), workerCompute.offer()), ctx.getSelf());
            }
            return Behaviors.same();
        }
    }

    // ---- running ----

    private final class Running {
        final RunPlan plan;
        final int rank;
        final ComputeThread compute;
        boolean stopping;
        /** The coordinator became unreachable or was removed: the node ends without waiting to leave. */
        boolean coordinatorLost;
        /** Completed once this rank's part of the generation is over, when the node is leaving (null: it is not). */
        CompletableFuture<Void> leaving;

        Running(RunPlan plan, int rank, ComputeThread compute) {
            this.plan = plan;
            this.rank = rank;
            this.compute = compute;
        }

        Behavior<Command> behavior() {
            return Behaviors.receive(Command.class)
                    .onMessage(Remote.class, this::onRemote)
                    .onMessage(ComputeEnded.class, this::onComputeEnded)
                    .onMessage(Leave.class, this::onLeave)
                    .onMessage(PlanChecked.class, m -> Behaviors.same())
                    .onMessage(MemberChanged.class, m -> lostCoordinator(m.event()) ? stopForLostCoordinator() : Behaviors.same())
                    .onMessage(ReachabilityChanged.class, m -> lostCoordinator(m.event()) ? stopForLostCoordinator() : Behaviors.same())
                    .build();
        }

        Behavior<Command> onRemote(Remote m) {
            WorkerProtocol.Command c = m.message();
            if (!(c instanceof WorkerProtocol.Identify) && !fromCoordinator(c, m.from())) {
                return Behaviors.same();
            }
            if (c instanceof WorkerProtocol.AbortGeneration a && a.runId() == plan.runId() && a.generation() == plan.generation()) {
                ctx.getLog().warn("generation {} aborted by the coordinator: {}", a.generation(), a.reason());
                compute.abort();
            } else if (c instanceof WorkerProtocol.CheckpointAndStop k && k.runId() == plan.runId()
                    && k.generation() == plan.generation()) {
                ctx.getLog().warn("the coordinator stops the run after the step in flight, with a checkpoint: {}", k.reason());
                compute.stopAtNextStep();
            } else if (c instanceof WorkerProtocol.Control k && k.runId() == plan.runId() && k.generation() == plan.generation()) {
                ctx.getLog().info("control #{} ({}) received", k.seq(), k.action().wireName());
                compute.control(k);
            } else if (c instanceof WorkerProtocol.StopRun s && s.runId() == plan.runId()) {
                ctx.getLog().warn("run {} stopped by the coordinator: {}", s.runId(), s.reason());
                stopping = true;
                compute.abort();
            } else if (c instanceof WorkerProtocol.Identify id) {
                SenderGate.tell(id.replyTo(), new CoordinatorProtocol.WorkerIdentified(self, ring.address(), workerCompute.offer()), ctx.getSelf());
            }
            return Behaviors.same();
        }

        Behavior<Command> stopForLostCoordinator() {
            ctx.getLog().error("the coordinator was lost; stopping");
            stopping = true;
            coordinatorLost = true;
            compute.abort();
            return Behaviors.same();
        }

        /**
         * The coordinator is told first, so it counts this worker out of the next generation before any
         * rank's GenerationEnded (this node's own comes after it, in order; a peer's may overtake it,
         * and the coordinator waits for every rank's answer either way).
         */
        Behavior<Command> onLeave(Leave m) {
            if (leaving != null) {
                leaving.whenComplete((v, e) -> m.done().complete(null)); // a second SIGTERM waits for the same commit
                return Behaviors.same();
            }
            leaving = m.done();
            ctx.getLog().warn("leaving ({}): rank {} asks every rank to stop after the step in flight, with a checkpoint", m.reason(),
                    rank);
            SenderGate.tell(coordinator, new CoordinatorProtocol.WorkerLeaving(plan.runId(), plan.generation(), rank, self, m.reason()),
                    ctx.getSelf());
            compute.stopAtNextStep();
            return Behaviors.same();
        }

        /** Finished: the node ends. Failed or aborted: it reports and waits for the next generation (or the stop). */
        Behavior<Command> onComputeEnded(ComputeEnded m) {
            try {
                if (m.ok() || stopping) {
                    ComputeEnded how = m.ok() ? m : new ComputeEnded(false, m.message());
                    return coordinatorLost ? endAtOnce(how) : end(how); // no leader is left to take a leave
                }
                ctx.getLog().warn("generation {} ended on rank {}: {}", plan.generation(), rank, m.message());
                return generationEnded(plan, rank, m.message(), m.stopStatus());
            } finally {
                if (leaving != null) {
                    leaving.complete(null); // the node's shutdown goes on: it leaves the cluster
                }
            }
        }
    }

    /** This rank's part of a generation is over: a new ring socket, the coordinator told, back to idle. */
    private Behavior<Command> generationEnded(RunPlan plan, int rank, String message, int stopStatus) {
        if (ring.server().isOpen()) {
            try {
                ring.server().close();
            } catch (java.io.IOException ignored) {
                // a new one is opened below either way
            }
        }
        ring = ringEndpoint.open();
        SenderGate.tell(coordinator, new CoordinatorProtocol.GenerationEnded(plan.runId(), plan.generation(), rank, message, self,
                ring.address(), stopStatus), ctx.getSelf());
        return idle();
    }

    /**
     * A plan only from the coordinator singleton's node (the oldest Up "coordinator" member); every
     * other command only from the node whose plan was accepted. Anything else is ignored with a warning.
     */
    private boolean fromCoordinator(WorkerProtocol.Command c, Address from) {
        Address expected = c instanceof WorkerProtocol.AssignPlan || coordinatorNode == null
                ? SenderGate.coordinatorNode(ctx.getSystem()).orElse(null) : coordinatorNode;
        if (from != null && from.equals(expected)) {
            return true;
        }
        ctx.getLog().warn("ignoring {} from {}: only the coordinator's node {} may send it", c.getClass().getSimpleName(),
                from == null ? "an unknown sender" : from, expected == null ? "(none up)" : expected);
        return false;
    }

    /** Not running: nothing in flight to save, the node may go at once. */
    private static Behavior<Command> leaveAtOnce(Leave m) {
        m.done().complete(null);
        return Behaviors.same();
    }

    // ---- membership (every phase) ----

    private Behavior<Command> onMember(MemberChanged m) {
        return lostCoordinator(m.event()) ? endAtOnce(new ComputeEnded(false, "the coordinator was lost")) : Behaviors.same();
    }

    private Behavior<Command> onReachability(ReachabilityChanged m) {
        return lostCoordinator(m.event()) ? endAtOnce(new ComputeEnded(false, "the coordinator became unreachable")) : Behaviors.same();
    }

    private boolean lostCoordinator(Object event) {
        if (coordinator == null) {
            // not planned yet: the coordinator may have given up before it identified this node (its
            // StopRun went only to the workers it knew); with no standby coordinator, its removal ends us
            return event instanceof ClusterEvent.MemberRemoved r && r.member().hasRole("coordinator");
        }
        Address a = coordinator.path().address();
        Address self = Cluster.get(ctx.getSystem()).selfMember().address();
        Address c = a.hasLocalScope() ? self : a;
        if (event instanceof ClusterEvent.MemberRemoved r) {
            return r.member().address().equals(c);
        }
        if (event instanceof ClusterEvent.UnreachableMember u) {
            return u.member().address().equals(c);
        }
        return false;
    }

    /**
     * The run is over for this node: its process ends (the launcher restarts workers for a new run),
     * after leaving the cluster. The node asks to leave and waits, at most {@link #LEAVE_WAIT}, until
     * the leader (the coordinator's node) has moved it to Exiting, then terminates. Terminating at once
     * ended the ActorSystem before the leader saw the leave: the coordinator's node kept this one
     * Leaving, then unreachable, and its own exit waited for it (4 s after an embedded run; 17 s and
     * a downing of every member by the split-brain resolver after a standalone coordinator's run;
     * measured 2026-12-07).
     */
    private Behavior<Command> end(ComputeEnded m) {
        reportEnd(m);
        Cluster cluster = Cluster.get(ctx.getSystem());
        cluster.manager().tell(new akka.cluster.typed.Leave(cluster.selfMember().address()));
        ctx.scheduleOnce(LEAVE_WAIT, ctx.getSelf(), new LeaveWaitOver());
        return Behaviors.receive(Command.class)
                .onMessage(MemberChanged.class, this::onEndingMember)
                .onMessage(LeaveWaitOver.class, this::onLeaveWaitOver)
                .build();
    }

    /** Ending: the leader moved this node to Exiting (or removed it), so its leave is taken. */
    private Behavior<Command> onEndingMember(MemberChanged c) {
        boolean me = c.event().member().address().equals(Cluster.get(ctx.getSystem()).selfMember().address());
        return me && (c.event() instanceof ClusterEvent.MemberExited || c.event() instanceof ClusterEvent.MemberRemoved)
                ? terminate() : Behaviors.same();
    }

    private Behavior<Command> onLeaveWaitOver(LeaveWaitOver m) {
        return terminate();
    }

    private Behavior<Command> terminate() {
        ctx.getSystem().terminate();
        return Behaviors.stopped();
    }

    /** The coordinator is gone: no leader will take this node's leave, so the node ends at once. */
    private Behavior<Command> endAtOnce(ComputeEnded m) {
        reportEnd(m);
        return terminate();
    }

    /** Logs how the run ended on this node and completes {@code ended}: the first end reported wins. */
    private void reportEnd(ComputeEnded m) {
        if (ended.isDone()) {
            return;
        }
        if (m.ok()) {
            ctx.getLog().info("run {} finished", runId);
        } else {
            ctx.getLog().error("run {} ended on this node: {}", runId, m.message());
        }
        ended.complete(m);
    }
}
