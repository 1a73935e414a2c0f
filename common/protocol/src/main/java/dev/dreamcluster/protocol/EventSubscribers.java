package dev.dreamcluster.protocol;

import akka.actor.Address;
import akka.actor.typed.ActorRef;
import akka.actor.typed.Behavior;
import akka.actor.typed.javadsl.ActorContext;
import akka.actor.typed.javadsl.Behaviors;
import akka.actor.typed.receptionist.Receptionist;
import akka.actor.typed.receptionist.ServiceKey;
import java.util.Optional;

/**
 * Trusted delivery of {@link TrainingEvent}s: a subscriber (the launcher, a monitor) registers a
 * gate under {@link #SERVICE}; the coordinator sends every event to each one with itself as the
 * sender, and the gate passes on only events whose sender is the coordinator's node. Anything else
 * (an event published on the open topic by any member, or sent by a node that is not the
 * coordinator's) is dropped with a warning, so no other member can end a run in a monitor's eyes.
 */
public final class EventSubscribers {
    public static final ServiceKey<TrainingEvent> SERVICE = ServiceKey.create(TrainingEvent.class, "dreamcluster-event-subscriber");

    private EventSubscribers() {}

    private record Sent(TrainingEvent event, Address from) implements akka.actor.NoSerializationVerificationNeeded {}

    /** Spawns a gate that forwards the coordinator's events to {@code target}, and registers it. */
    public static void subscribe(ActorContext<?> ctx, ActorRef<TrainingEvent> target, String name) {
        ActorRef<Sent> filter = ctx.spawn(onlyFromCoordinator(target), name + "-filter");
        ActorRef<TrainingEvent> gate = SenderGate.spawn(ctx, TrainingEvent.class, Sent::new, filter, name + "-gate");
        ctx.getSystem().receptionist().tell(Receptionist.register(SERVICE, gate));
    }

    private static Behavior<Sent> onlyFromCoordinator(ActorRef<TrainingEvent> target) {
        return Behaviors.setup(ctx -> Behaviors.receive(Sent.class).onMessage(Sent.class, s -> {
            Optional<Address> coordinator = SenderGate.coordinatorNode(ctx.getSystem());
            if (s.from() != null && coordinator.isPresent() && coordinator.get().equals(s.from())) {
                target.tell(s.event());
            } else {
                ctx.getLog().warn("ignoring {} from {}: run events come only from the coordinator's node {}",
                        s.event().getClass().getSimpleName(), s.from() == null ? "an unknown sender" : s.from(),
                        coordinator.map(Address::toString).orElse("(none up)"));
            }
            return Behaviors.same();
        }).build());
    }
}
