package dev.dreamcluster.coordinator;

import akka.actor.Address;
import akka.actor.NoSerializationVerificationNeeded;
import akka.actor.typed.ActorRef;
import akka.actor.typed.ActorSystem;
import akka.actor.typed.Behavior;
import akka.actor.typed.BehaviorInterceptor;
import akka.actor.typed.TypedActorContext;
import akka.actor.typed.javadsl.ActorContext;
import akka.actor.typed.javadsl.Behaviors;
import akka.cluster.typed.Cluster;
import dev.dreamcluster.protocol.CoordinatorProtocol;
import dev.dreamcluster.protocol.SenderGate;
import dev.dreamcluster.protocol.WorkerProtocol;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.ToIntFunction;

/**
 * The coordinator's door for worker messages. Typed Akka drops the sender, so workers answer
 * through a {@link SenderGate} child that hands each message over in a {@link Sent} with the node it
 * came from. This interceptor, in front of every phase, delivers the message itself, unwrapped, only
 * when that node may say it:
 *
 * <ul>
 *   <li>a worker identifies only itself, from its own node, and only a "worker" node takes a rank;
 *   <li>a rank's message comes only from the node of that rank in the current generation (a committed
 *       checkpoint: rank 0's).
 * </ul>
 *
 * <p>So the phases have one handler per message type and never see a sender. Anything that is neither
 * such an envelope nor the coordinator's own {@link Coordinator.Command} (a worker message sent
 * straight to the coordinator's ref, around the child) is dropped. Each phase builds its own gate
 * from its state's ranks; the newest replaces the one before ({@link #isSame}) instead of nesting.
 */
final class WorkerGate extends BehaviorInterceptor<Object, Object> {
    /** A worker's message and the node it came from (null: it came without a sender); made on this node only. */
    record Sent(CoordinatorProtocol.Command message, Address from) implements NoSerializationVerificationNeeded {}

    /** The one place that knows which rank a message speaks for. WorkerIdentified speaks for its worker. */
    private static final Map<Class<?>, ToIntFunction<Object>> RANK_OF = Map.ofEntries(
            rank(CoordinatorProtocol.PlanAccepted.class, CoordinatorProtocol.PlanAccepted::rank),
            rank(CoordinatorProtocol.PlanRefused.class, CoordinatorProtocol.PlanRefused::rank),
            rank(CoordinatorProtocol.StepReported.class, CoordinatorProtocol.StepReported::rank),
            rank(CoordinatorProtocol.RunEnded.class, CoordinatorProtocol.RunEnded::rank),
            rank(CoordinatorProtocol.GenerationEnded.class, CoordinatorProtocol.GenerationEnded::rank),
            rank(CoordinatorProtocol.WorkerLeaving.class, CoordinatorProtocol.WorkerLeaving::rank),
            rank(CoordinatorProtocol.CheckpointCommitted.class, c -> 0), // only rank 0 commits checkpoints
            rank(CoordinatorProtocol.ControlApplied.class, c -> 0)); // and reports the controls every rank applied

    private final List<ActorRef<WorkerProtocol.Command>> ranks;

    private WorkerGate(List<ActorRef<WorkerProtocol.Command>> ranks) {
        super(Object.class);
        this.ranks = ranks;
    }

    /** {@code phase} behind a gate that takes rank r's messages only from the node of {@code ranks.get(r)}. */
    static Behavior<Object> around(List<ActorRef<WorkerProtocol.Command>> ranks, Behavior<Object> phase) {
        return Behaviors.intercept(() -> new WorkerGate(ranks), phase);
    }

    @Override
    public Behavior<Object> aroundReceive(TypedActorContext<Object> ctx, Object msg, ReceiveTarget<Object> target) {
        if (msg instanceof Sent sent) {
            return admits(ctx.asJava(), sent) ? target.apply(ctx, sent.message()) : Behaviors.same();
        }
        if (msg instanceof Coordinator.Command) {
            return target.apply(ctx, msg);
        }
        ctx.asJava().getLog().warn("ignoring {}: worker messages count only through the coordinator's sender gate",
                msg.getClass().getSimpleName());
        return Behaviors.same();
    }

    @Override
    public boolean isSame(BehaviorInterceptor<Object, Object> other) {
        return other instanceof WorkerGate;
    }

    private boolean admits(ActorContext<Object> ctx, Sent sent) {
        if (sent.message() instanceof CoordinatorProtocol.WorkerIdentified id) {
            return identifiesItself(ctx, id, sent.from());
        }
        int rank = RANK_OF.getOrDefault(sent.message().getClass(), m -> -1).applyAsInt(sent.message());
        if (rank >= 0 && rank < ranks.size() && sent.from() != null && sent.from().equals(nodeOf(ctx.getSystem(), ranks.get(rank)))) {
            return true;
        }
        ctx.getLog().warn("ignoring {} for rank {} from {}: not that rank's node", sent.message().getClass().getSimpleName(), rank,
                sent.from() == null ? "no sender" : sent.from());
        return false;
    }

    /** Only a worker actor on a member with the "worker" role, answering for itself, takes a rank. */
    private static boolean identifiesItself(ActorContext<Object> ctx, CoordinatorProtocol.WorkerIdentified id, Address from) {
        Address node = nodeOf(ctx.getSystem(), id.worker());
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

    /** The node of {@code ref}: a local ref's path has no host, it is this node. */
    private static Address nodeOf(ActorSystem<?> system, ActorRef<?> ref) {
        Address a = ref.path().address();
        return a.hasLocalScope() ? Cluster.get(system).selfMember().address() : a;
    }

    private static <M> Map.Entry<Class<?>, ToIntFunction<Object>> rank(Class<M> type, ToIntFunction<M> rankOf) {
        return Map.entry(type, m -> rankOf.applyAsInt(type.cast(m)));
    }
}
