package dev.dreamcluster.coordinator;

import akka.actor.typed.ActorRef;
import akka.actor.typed.DispatcherSelector;
import akka.actor.typed.javadsl.ActorContext;
import akka.actor.typed.javadsl.TimerScheduler;
import akka.actor.typed.pubsub.Topic;
import dev.dreamcluster.config.Json;
import dev.dreamcluster.protocol.CoordinatorProtocol;
import dev.dreamcluster.protocol.SenderGate;
import dev.dreamcluster.protocol.TrainingEvent;
import dev.dreamcluster.protocol.WorkerProtocol;
import java.io.IOException;
import java.time.Duration;
import org.slf4j.Logger;

/**
 * The fixed parts of one run's coordinator, made once when it starts and the same in every phase:
 * its actor context and timers, its settings, and the actors it sends through. What changes lives in
 * {@link RunState}.
 *
 * @param replies where workers answer: a {@link SenderGate} child that hands each answer, with the
 *     node that sent it, to the {@link WorkerGate}
 * @param events the open topic of TrainingEvents (monitors watch it; no control depends on it)
 * @param folder the run folder's writer (metrics.jsonl), on the dispatcher for blocking I/O
 * @param totalSteps the run's length for monitors: train_config.max_steps, 0 when unknown
 */
record Env(ActorContext<Object> ctx, TimerScheduler<Object> timers, CoordinatorSettings settings,
        ActorRef<CoordinatorProtocol.Command> replies, ActorRef<Topic.Command<TrainingEvent>> events, ActorRef<RunFolder.Command> folder,
        int totalSteps) {

    /** Spawns the coordinator's children: the event topic, the workers' sender gate and the run folder. */
    static Env spawn(ActorContext<Object> ctx, TimerScheduler<Object> timers, CoordinatorSettings settings) {
        return new Env(ctx, timers, settings,
                SenderGate.spawn(ctx, CoordinatorProtocol.Command.class, WorkerGate.Sent::new, ctx.getSelf(), "replies"),
                ctx.spawn(Topic.create(TrainingEvent.class, TrainingEvent.TOPIC), "events"),
                // file I/O can block: it gets threads of its own, never this actor's
                ctx.spawn(RunFolder.create(settings.out()), "run-folder", DispatcherSelector.blocking()),
                totalSteps(settings.runConfig()));
    }

    long runId() {
        return settings.runId();
    }

    Logger log() {
        return ctx.getLog();
    }

    /** To a worker, with the coordinator as the sender: a worker takes control only from the coordinator's node. */
    void tell(ActorRef<WorkerProtocol.Command> worker, WorkerProtocol.Command message) {
        SenderGate.tell(worker, message, ctx.getSelf());
    }

    /** On the open topic (watching only) and, with the coordinator as the sender, to every trusted subscriber. */
    void publish(RunState s, TrainingEvent e) {
        events.tell(Topic.publish(e));
        s.subscribers().forEach(sub -> SenderGate.tell(sub, e, ctx.getSelf()));
    }

    static String seconds(Duration d) {
        return d.toSeconds() + " s";
    }

    /**
     * train_config.max_steps of the resolved config, 0 when the run is sized by epochs (the workers
     * count those) or the value is not there. Read as a plain JSON path so that a partial config (the
     * actor tests send one) never fails the run.
     */
    private static int totalSteps(String runConfig) {
        try {
            var max = Json.MAPPER.readTree(runConfig).path("train_config").path("max_steps");
            return max.isInt() ? max.asInt() : 0;
        } catch (IOException e) {
            return 0;
        }
    }
}
