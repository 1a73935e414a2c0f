package dev.dreamcluster.protocol;

import akka.actor.AbstractActor;
import akka.actor.Address;
import akka.actor.Props;
import akka.actor.typed.ActorRef;
import akka.actor.typed.javadsl.ActorContext;
import akka.actor.typed.javadsl.Adapter;
import akka.cluster.Member;
import akka.cluster.MemberStatus;
import java.util.Optional;
import java.util.function.BiFunction;
import java.util.stream.StreamSupport;

/**
 * Who sent a message. Typed Akka drops the sender, so control messages between nodes go through a
 * gate: the sender tells with {@link #tell} (a classic send that carries the sending actor), and the
 * receiver's gate ({@link #spawn}) hands its actor each message together with the sending node's
 * address (null when the message came without a sender, which the receivers ignore). The receivers
 * then accept a message only from the node that may send it: ranks only from {@code worker} nodes,
 * plans, starts and stops only from the coordinator's node, run events only from the coordinator's
 * node ({@link #coordinatorNode}).
 *
 * <p>What this protects against: any member that is not the coordinator (a monitor, another worker,
 * a stray process started with the cluster's keys) taking over a run through the normal protocol.
 * What it does not: the sender field is written by the sending node, so a member that holds the
 * cluster key and runs modified Akka code can still claim another sender; the key itself is the trust
 * boundary (see docs/security.md#threat-model).
 */
public final class SenderGate {
    private SenderGate() {}

    /** Sends {@code message} to {@code to} with {@code from} as its sender (from any thread). */
    public static <T> void tell(ActorRef<T> to, T message, ActorRef<?> from) {
        Adapter.toClassic(to).tell(message, Adapter.toClassic(from));
    }

    /**
     * A gate in front of {@code target}: each message of {@code type} sent to the returned ref arrives
     * at {@code target} as {@code wrap(message, sending node's address or null)}.
     */
    public static <T, M> ActorRef<T> spawn(ActorContext<?> ctx, Class<T> type, BiFunction<T, Address, M> wrap, ActorRef<? super M> target,
            String name) {
        akka.actor.ActorRef gate = Adapter.actorOf(ctx, Props.create(Gate.class, () -> new Gate<>(type, wrap, target)), name);
        return Adapter.toTyped(gate);
    }

    /**
     * The node the coordinator singleton runs on: the oldest Up member with role "coordinator". This
     * node counts too when it has that role, since its own view of the membership may lag just after
     * start-up, when its singleton already publishes.
     */
    public static Optional<Address> coordinatorNode(akka.actor.typed.ActorSystem<?> system) {
        var cluster = akka.cluster.typed.Cluster.get(system);
        var candidates = StreamSupport.stream(cluster.state().getMembers().spliterator(), false)
                .filter(m -> m.hasRole("coordinator") && m.status() == MemberStatus.up());
        Member self = cluster.selfMember();
        if (self.hasRole("coordinator")) {
            candidates = java.util.stream.Stream.concat(candidates, java.util.stream.Stream.of(self));
        }
        return candidates.reduce((a, b) -> a.isOlderThan(b) ? a : b).map(Member::address);
    }

    /** The roles of the member at {@code address}, or empty if it is no member. */
    public static java.util.Set<String> rolesOf(akka.actor.typed.ActorSystem<?> system, Address address) {
        var members = akka.cluster.typed.Cluster.get(system).state().getMembers();
        return StreamSupport.stream(members.spliterator(), false).filter(m -> m.address().equals(address)).findFirst()
                .map(Member::getRoles).orElse(java.util.Set.of());
    }

    static final class Gate<T, M> extends AbstractActor {
        private final Class<T> type;
        private final BiFunction<T, Address, M> wrap;
        private final ActorRef<? super M> target;
        private final Address self;

        Gate(Class<T> type, BiFunction<T, Address, M> wrap, ActorRef<? super M> target) {
            this.type = type;
            this.wrap = wrap;
            this.target = target;
            this.self = akka.cluster.Cluster.get(getContext().getSystem()).selfAddress();
        }

        @Override
        public Receive createReceive() {
            return receiveBuilder().match(type, m -> target.tell(wrap.apply(m, senderNode()))).build();
        }

        /** The sending node (a local sender's path has no host: it is this node), or null without a sender. */
        private Address senderNode() {
            akka.actor.ActorRef s = getSender();
            if (s == null || s.equals(getContext().getSystem().deadLetters())) {
                return null;
            }
            Address a = s.path().address();
            return a.hasLocalScope() ? self : a;
        }
    }
}
