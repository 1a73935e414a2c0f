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

    private record Remote(WorkerProtocol.Command message) implements Command {}

    /** The compute thread ended (normally or not). */
    public record ComputeEnded(boolean ok, String message) implements Command {}

    private final ActorContext<Command> ctx;
    private final ServerSocketChannel dataServer;
    private final String dataAddress;
    private final ActorRef<WorkerProtocol.Command> self;
    private final WorkerCompute workerCompute;
    private RunPlan plan;
    private int rank;
    private ActorRef<CoordinatorProtocol.Command> coordinator;
    private ComputeThread compute;

    private Worker(ActorContext<Command> ctx, ServerSocketChannel dataServer, String dataAddress, WorkerCompute workerCompute) {
        this.ctx = ctx;
        this.workerCompute = workerCompute;
        this.dataServer = dataServer;
        this.dataAddress = dataAddress;
        this.self = ctx.messageAdapter(WorkerProtocol.Command.class, Remote::new);
        ctx.getSystem().receptionist().tell(Receptionist.register(WorkerProtocol.SERVICE, self));
    }

    /**
     * @param dataServer this worker's bound ring socket (owned from here on)
     * @param dataAddress host:port peers reach it at
     */
    public static Behavior<Command> create(ServerSocketChannel dataServer, String dataAddress) {
        return create(dataServer, dataAddress, WorkerCompute.cpu());
    }

    /** @param workerCompute this worker's --device and its data-plane offer (an NCCL id on a GPU) */
    public static Behavior<Command> create(ServerSocketChannel dataServer, String dataAddress, WorkerCompute workerCompute) {
        return Behaviors.setup(ctx -> new Worker(ctx, dataServer, dataAddress, workerCompute).idle());
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
        if (c instanceof WorkerProtocol.Identify id) {
            id.replyTo().tell(new CoordinatorProtocol.WorkerIdentified(self, dataAddress, workerCompute.offer()));
        } else if (c instanceof WorkerProtocol.AssignPlan a) {
            return onAssignPlan(a);
        } else if (c instanceof WorkerProtocol.StartRun s && plan != null && s.runId() == plan.runId() && compute == null) {
            compute = new ComputeThread(plan, rank, dataServer, coordinator, ctx.getSelf(), workerCompute);
            compute.start();
        } else if (c instanceof WorkerProtocol.StopRun s && plan != null && s.runId() == plan.runId()) {
            ctx.getLog().warn("run {} stopped by the coordinator: {}", s.runId(), s.reason());
            if (compute != null) {
                compute.abort();
            }
        }
        return Behaviors.same();
    }

    /** Recomputes the plan hash from this node's own files; a mismatch means a different model or config. */
    private Behavior<Command> onAssignPlan(WorkerProtocol.AssignPlan a) {
        String mine;
        try {
            mine = localPlanHash(a.plan());
        } catch (RuntimeException e) {
            a.replyTo().tell(new CoordinatorProtocol.PlanRefused(a.plan().runId(), a.rank(), "cannot read the plan's inputs: " + e.getMessage()));
            return Behaviors.same();
        }
        if (!mine.equals(a.plan().planHash())) {
            String why = "plan hash " + mine + " computed here differs from the coordinator's " + a.plan().planHash()
                    + " (different model, freezing or optimizer config on this node)";
            ctx.getLog().error("refusing run {}: {}", a.plan().runId(), why);
            a.replyTo().tell(new CoordinatorProtocol.PlanRefused(a.plan().runId(), a.rank(), why));
            return Behaviors.same();
        }
        plan = a.plan();
        rank = a.rank();
        coordinator = a.replyTo();
        a.replyTo().tell(new CoordinatorProtocol.PlanAccepted(plan.runId(), rank));
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
