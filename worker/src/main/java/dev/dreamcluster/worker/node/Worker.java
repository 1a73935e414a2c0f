package dev.dreamcluster.worker.node;

import akka.actor.typed.ActorRef;
import akka.actor.typed.Behavior;
import akka.actor.typed.DispatcherSelector;
import akka.actor.typed.javadsl.ActorContext;
import akka.actor.typed.javadsl.Behaviors;
import akka.actor.typed.receptionist.Receptionist;
import dev.dreamcluster.config.RunConfig;
import dev.dreamcluster.plan.PlanManifest;
import dev.dreamcluster.protocol.CoordinatorProtocol;
import dev.dreamcluster.protocol.RunPlan;
import dev.dreamcluster.protocol.WorkerProtocol;
import java.nio.channels.ServerSocketChannel;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;

/**
 * One worker (one per GPU or CPU process). The actor only handles the protocol; phases:
 *
 * <pre>
 *   idle      registered with the Receptionist, answers Identify with its ring address
 *   checking  a plan arrived: its manifest is recomputed from this node's own copies (off the actor
 *             thread: hashing a model reads it) and compared; accepted or refused naming the difference
 *   planned   accepted, waiting for StartRun
 *   running   the ComputeThread trains; StopRun aborts it; its end stops this node
 * </pre>
 */
public final class Worker {
    public sealed interface Command {}

    private record Remote(WorkerProtocol.Command message) implements Command {}

    /** This node's manifest for a plan, computed on the blocking dispatcher (or why it could not be). */
    private record PlanChecked(WorkerProtocol.AssignPlan assign, RunConfig run, String differences, String error)
            implements Command {}

    /** The compute thread ended (normally or not). */
    public record ComputeEnded(boolean ok, String message) implements Command {}

    private final ActorContext<Command> ctx;
    private final ServerSocketChannel dataServer;
    private final String dataAddress;
    private final LocalPaths paths;
    private final CompletableFuture<ComputeEnded> ended;
    private final ActorRef<WorkerProtocol.Command> self;

    private Worker(ActorContext<Command> ctx, ServerSocketChannel dataServer, String dataAddress, LocalPaths paths,
            CompletableFuture<ComputeEnded> ended) {
        this.ctx = ctx;
        this.dataServer = dataServer;
        this.dataAddress = dataAddress;
        this.paths = paths;
        this.ended = ended;
        this.self = ctx.messageAdapter(WorkerProtocol.Command.class, Remote::new);
        ctx.getSystem().receptionist().tell(Receptionist.register(WorkerProtocol.SERVICE, self));
    }

    /**
     * @param dataServer this worker's bound ring socket (owned from here on)
     * @param dataAddress host:port peers dial to reach it (its advertised address)
     * @param paths this node's copies of the model, data and checkpoint, and its output folder
     * @param ended completed with how the run ended on this node; the actor system is terminated then
     */
    public static Behavior<Command> create(ServerSocketChannel dataServer, String dataAddress, LocalPaths paths,
            CompletableFuture<ComputeEnded> ended) {
        return Behaviors.setup(ctx -> new Worker(ctx, dataServer, dataAddress, paths, ended).idle());
    }

    private Behavior<Command> idle() {
        return Behaviors.receive(Command.class)
                .onMessage(Remote.class, this::onIdleRemote)
                .onMessage(PlanChecked.class, this::onPlanChecked)
                .build();
    }

    private Behavior<Command> onIdleRemote(Remote m) {
        if (m.message() instanceof WorkerProtocol.Identify id) {
            id.replyTo().tell(new CoordinatorProtocol.WorkerIdentified(self, dataAddress));
        } else if (m.message() instanceof WorkerProtocol.AssignPlan a) {
            CompletionStage<PlanChecked> check = CompletableFuture.supplyAsync(() -> check(a),
                    ctx.getSystem().dispatchers().lookup(DispatcherSelector.blocking()));
            ctx.pipeToSelf(check, (ok, err) -> ok != null ? ok : new PlanChecked(a, null, null, String.valueOf(err)));
        }
        return Behaviors.same();
    }

    /** Recomputes the plan manifest from this node's files and the plan's run config (blocking: reads and hashes). */
    private PlanChecked check(WorkerProtocol.AssignPlan a) {
        try {
            RunConfig run = paths.apply(RunConfig.fromJson(a.plan().runConfig()));
            PlanManifest mine = PlanManifest.compute(run, a.plan().worldSize(), paths.resume(a.plan().resume()));
            String diff = mine.hash().equals(a.plan().planHash()) ? ""
                    : mine.differences(PlanManifest.fromLines(a.plan().manifest()), 5);
            if (diff.isEmpty() && !mine.hash().equals(a.plan().planHash())) {
                diff = "plan hash " + mine.hash() + " here, " + a.plan().planHash() + " at the coordinator";
            }
            return new PlanChecked(a, run, diff, null);
        } catch (RuntimeException e) {
            return new PlanChecked(a, null, null, e.getMessage() == null ? e.toString() : e.getMessage());
        }
    }

    private Behavior<Command> onPlanChecked(PlanChecked c) {
        RunPlan plan = c.assign().plan();
        ActorRef<CoordinatorProtocol.Command> coordinator = c.assign().replyTo();
        String why = c.error() != null ? "cannot read this node's copy of the run's inputs: " + c.error()
                : c.differences().isEmpty() ? null : "this node's plan differs: " + c.differences();
        if (why != null) {
            ctx.getLog().error("refusing run {}: {}", plan.runId(), why);
            coordinator.tell(new CoordinatorProtocol.PlanRefused(plan.runId(), c.assign().rank(), why));
            return Behaviors.same();
        }
        ctx.getLog().info("run {} rank {} of {}: run config {}", plan.runId(), c.assign().rank(), plan.worldSize(), c.run().toJson());
        coordinator.tell(new CoordinatorProtocol.PlanAccepted(plan.runId(), c.assign().rank()));
        return planned(plan, c.assign().rank(), c.run(), coordinator);
    }

    private Behavior<Command> planned(RunPlan plan, int rank, RunConfig run, ActorRef<CoordinatorProtocol.Command> coordinator) {
        return Behaviors.receive(Command.class)
                .onMessage(Remote.class, m -> onPlannedRemote(m, plan, rank, run, coordinator))
                .onMessage(PlanChecked.class, m -> Behaviors.same())
                .build();
    }

    private Behavior<Command> onPlannedRemote(Remote m, RunPlan plan, int rank, RunConfig run,
            ActorRef<CoordinatorProtocol.Command> coordinator) {
        if (m.message() instanceof WorkerProtocol.StartRun s && s.runId() == plan.runId()) {
            ComputeThread compute = new ComputeThread(plan, rank, run, paths.resume(plan.resume()), dataServer, coordinator,
                    ctx.getSelf());
            compute.start();
            return running(plan, compute);
        }
        if (m.message() instanceof WorkerProtocol.StopRun s && s.runId() == plan.runId()) {
            ctx.getLog().warn("run {} stopped by the coordinator before it started: {}", s.runId(), s.reason());
            return onComputeEnded(new ComputeEnded(false, "stopped before the start: " + s.reason()), plan, rank);
        }
        return Behaviors.same();
    }

    private Behavior<Command> running(RunPlan plan, ComputeThread compute) {
        return Behaviors.receive(Command.class)
                .onMessage(Remote.class, m -> onRunningRemote(m, plan, compute))
                .onMessage(ComputeEnded.class, m -> onComputeEnded(m, plan, compute.rank()))
                .onMessage(PlanChecked.class, m -> Behaviors.same())
                .build();
    }

    private Behavior<Command> onRunningRemote(Remote m, RunPlan plan, ComputeThread compute) {
        if (m.message() instanceof WorkerProtocol.StopRun s && s.runId() == plan.runId()) {
            ctx.getLog().warn("run {} stopped by the coordinator: {}", s.runId(), s.reason());
            compute.abort();
        }
        return Behaviors.same();
    }

    /** The run is over for this node: its process ends (the launcher restarts workers for a new run). */
    private Behavior<Command> onComputeEnded(ComputeEnded m, RunPlan plan, int rank) {
        if (m.ok()) {
            ctx.getLog().info("run {} finished on rank {}", plan.runId(), rank);
        } else {
            ctx.getLog().error("run {} failed on rank {}: {}", plan.runId(), rank, m.message());
        }
        ended.complete(m);
        ctx.getSystem().terminate();
        return Behaviors.stopped();
    }

    /** The manifest this node computes for {@code plan} with its own copies (for launchers and tests). */
    public static PlanManifest localManifest(RunPlan plan, LocalPaths paths) {
        RunConfig run = paths.apply(RunConfig.fromJson(plan.runConfig()));
        return PlanManifest.compute(run, plan.worldSize(), paths.resume(plan.resume()));
    }

}
