package dev.dreamcluster.worker.node;

import akka.actor.typed.ActorRef;
import akka.actor.typed.Behavior;
import akka.actor.typed.javadsl.ActorContext;
import akka.actor.typed.javadsl.Behaviors;
import akka.actor.typed.receptionist.Receptionist;
import dev.dreamcluster.config.CliFlags;
import dev.dreamcluster.config.ConfigResolver;
import dev.dreamcluster.config.ResolvedTrainingConfig;
import dev.dreamcluster.freeze.FreezePlan;
import dev.dreamcluster.model.DiffusersFolder;
import dev.dreamcluster.plan.PlanHash;
import dev.dreamcluster.protocol.CoordinatorProtocol;
import dev.dreamcluster.protocol.RunPlan;
import dev.dreamcluster.protocol.SenderGate;
import dev.dreamcluster.protocol.WorkerProtocol;
import dev.dreamcluster.worker.train.TrainConfig;
import java.nio.channels.ServerSocketChannel;
import java.nio.file.Path;
import java.util.Map;

/**
 * One worker (one per GPU or CPU process). The actor only handles the protocol: it registers with the
 * Receptionist, reports its data-plane address, checks the coordinator's plan hash against the one it
 * computes from its own model and config (refusing on a mismatch), and starts or stops the
 * {@link ComputeThread}, which does all training work. Phases: idle, planned, running, done.
 */
public final class Worker {
    public sealed interface Command {}

    /** A protocol message and the node it came from (null: no sender); see {@link SenderGate}. */
    private record Remote(WorkerProtocol.Command message, akka.actor.Address from)
            implements Command, akka.actor.NoSerializationVerificationNeeded {}

    /** The compute thread ended (normally or not). */
    public record ComputeEnded(boolean ok, String message) implements Command {}

    private final ActorContext<Command> ctx;
    private final ServerSocketChannel dataServer;
    private final String dataAddress;
    private final ActorRef<WorkerProtocol.Command> self;
    private RunPlan plan;
    private int rank;
    private ActorRef<CoordinatorProtocol.Command> coordinator;
    /** The node that sent the accepted plan: the only one whose StartRun and StopRun count. */
    private akka.actor.Address coordinatorNode;
    private ComputeThread compute;

    private Worker(ActorContext<Command> ctx, ServerSocketChannel dataServer, String dataAddress) {
        this.ctx = ctx;
        this.dataServer = dataServer;
        this.dataAddress = dataAddress;
        this.self = SenderGate.spawn(ctx, WorkerProtocol.Command.class, Remote::new, ctx.getSelf(), "inbox");
        ctx.getSystem().receptionist().tell(Receptionist.register(WorkerProtocol.SERVICE, self));
    }

    /**
     * @param dataServer this worker's bound ring socket (owned from here on)
     * @param dataAddress host:port peers reach it at
     */
    public static Behavior<Command> create(ServerSocketChannel dataServer, String dataAddress) {
        return Behaviors.setup(ctx -> new Worker(ctx, dataServer, dataAddress).idle());
    }

    private Behavior<Command> idle() {
        return Behaviors.receive(Command.class)
                .onMessage(Remote.class, this::onRemote)
                .onMessage(ComputeEnded.class, this::onComputeEnded)
                .build();
    }

    /** The run is over for this node: its process ends (the launcher restarts workers for a new run). */
    private Behavior<Command> onComputeEnded(ComputeEnded m) {
        if (m.ok()) {
            ctx.getLog().info("run {} finished on rank {}", plan.runId(), rank);
        } else {
            ctx.getLog().error("run {} failed on rank {}: {}", plan.runId(), rank, m.message());
        }
        ended = m;
        ctx.getSystem().terminate();
        return Behaviors.same();
    }

    /** How the run ended on this node, or null while it has not. */
    public static volatile ComputeEnded ended;

    private Behavior<Command> onRemote(Remote m) {
        WorkerProtocol.Command c = m.message();
        if (!c.getClass().equals(WorkerProtocol.Identify.class) && !fromCoordinator(c, m.from())) {
            return Behaviors.same();
        }
        if (c instanceof WorkerProtocol.Identify id) {
            SenderGate.tell(id.replyTo(), new CoordinatorProtocol.WorkerIdentified(self, dataAddress), ctx.getSelf());
        } else if (c instanceof WorkerProtocol.AssignPlan a) {
            return onAssignPlan(a, m.from());
        } else if (c instanceof WorkerProtocol.StartRun s && plan != null && s.runId() == plan.runId() && compute == null) {
            compute = new ComputeThread(plan, rank, dataServer, coordinator, ctx.getSelf());
            compute.start();
        } else if (c instanceof WorkerProtocol.StopRun s && plan != null && s.runId() == plan.runId()) {
            ctx.getLog().warn("run {} stopped by the coordinator: {}", s.runId(), s.reason());
            if (compute != null) {
                compute.abort();
            }
        }
        return Behaviors.same();
    }

    /**
     * A plan only from the coordinator singleton's node (the oldest Up "coordinator" member); a start
     * or stop only from the node whose plan was accepted. Anything else is ignored with a warning.
     */
    private boolean fromCoordinator(WorkerProtocol.Command c, akka.actor.Address from) {
        akka.actor.Address expected = c instanceof WorkerProtocol.AssignPlan || coordinatorNode == null
                ? SenderGate.coordinatorNode(ctx.getSystem()).orElse(null) : coordinatorNode;
        if (from != null && from.equals(expected)) {
            return true;
        }
        ctx.getLog().warn("ignoring {} from {}: only the coordinator's node {} may send it", c.getClass().getSimpleName(),
                from == null ? "an unknown sender" : from, expected == null ? "(none up)" : expected);
        return false;
    }

    /** Recomputes the plan hash from this node's own files; a mismatch means a different model or config. */
    private Behavior<Command> onAssignPlan(WorkerProtocol.AssignPlan a, akka.actor.Address from) {
        String mine;
        try {
            mine = localPlanHash(a.plan());
        } catch (RuntimeException e) {
            SenderGate.tell(a.replyTo(), new CoordinatorProtocol.PlanRefused(a.plan().runId(), a.rank(), "cannot read the plan's inputs: "
                    + e.getMessage()), ctx.getSelf());
            return Behaviors.same();
        }
        if (!mine.equals(a.plan().planHash())) {
            String why = "plan hash " + mine + " computed here differs from the coordinator's " + a.plan().planHash()
                    + " (different model, freezing or optimizer config on this node)";
            ctx.getLog().error("refusing run {}: {}", a.plan().runId(), why);
            SenderGate.tell(a.replyTo(), new CoordinatorProtocol.PlanRefused(a.plan().runId(), a.rank(), why), ctx.getSelf());
            return Behaviors.same();
        }
        plan = a.plan();
        rank = a.rank();
        coordinator = a.replyTo();
        coordinatorNode = from;
        SenderGate.tell(a.replyTo(), new CoordinatorProtocol.PlanAccepted(plan.runId(), rank), ctx.getSelf());
        return Behaviors.same();
    }

    /** The plan hash of a run as this node sees it: its model's manifest, its resolved freezing, the world size. */
    public static String localPlanHash(RunPlan plan) {
        Path trainJson = Path.of(plan.trainJson());
        TrainConfig cfg = TrainConfig.load(trainJson, Map.of());
        DiffusersFolder folder = DiffusersFolder.read(cfg.model());
        ResolvedTrainingConfig opt = ConfigResolver.load(trainJson, CliFlags.NONE, folder.textEncoder().numHiddenLayers());
        return PlanHash.of(folder, FreezePlan.of(opt), plan.worldSize());
    }
}
