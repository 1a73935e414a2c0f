package dev.dreamcluster.monitoring;

import akka.actor.typed.ActorRef;
import akka.actor.typed.Behavior;
import akka.actor.typed.javadsl.Behaviors;
import akka.actor.typed.pubsub.Topic;
import dev.dreamcluster.protocol.TrainingEvent;

/**
 * Subscribes to the TrainingEvent topic and keeps the run's {@link RunStatus}; the HTTP routes ask it
 * for a snapshot. It never talks to the Coordinator: everything it knows came through the topic.
 */
final class RunMonitor {
    sealed interface Command {}

    record Observed(TrainingEvent event) implements Command {}

    record GetStatus(ActorRef<RunStatus.Snapshot> replyTo) implements Command {}

    private RunMonitor() {}

    static Behavior<Command> create(ActorRef<Topic.Command<TrainingEvent>> topic) {
        return Behaviors.setup(ctx -> {
            topic.tell(Topic.subscribe(ctx.messageAdapter(TrainingEvent.class, Observed::new)));
            RunStatus status = new RunStatus();
            return Behaviors.receive(Command.class)
                    .onMessage(Observed.class, m -> {
                        status.on(m.event(), System.nanoTime());
                        return Behaviors.same();
                    })
                    .onMessage(GetStatus.class, m -> {
                        m.replyTo().tell(status.snapshot());
                        return Behaviors.same();
                    })
                    .build();
        });
    }
}
