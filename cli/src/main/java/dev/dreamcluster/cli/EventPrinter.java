package dev.dreamcluster.cli;

import akka.actor.typed.Behavior;
import akka.actor.typed.javadsl.Behaviors;
import dev.dreamcluster.protocol.TrainingEvent;
import java.util.function.Consumer;
import java.util.Locale;
import java.util.concurrent.CompletableFuture;

/**
 * A live view of a run from the TrainingEvent topic: members and their state, a progress line per
 * step (loss, lr, grad norm, samples/s, compute/comm/optimizer split), and the end. Completes
 * {@code done} when the run finishes.
 */
final class EventPrinter {
    private EventPrinter() {}

    static Behavior<TrainingEvent> create(Consumer<String> out, CompletableFuture<TrainingEvent.RunFinished> done) {
        return Behaviors.receive(TrainingEvent.class)
                .onMessage(TrainingEvent.MemberChanged.class, m -> print(out, String.format("member %s [%s] %s", m.address(), m.roles(),
                        m.status().replace("Member", "").toLowerCase(Locale.ROOT))))
                .onMessage(TrainingEvent.RunStarted.class, m -> print(out, String.format("run %d started on %d workers (plan %s)",
                        m.runId(), m.workers(), m.planHash().substring(0, 12))))
                .onMessage(TrainingEvent.GenerationStarted.class, m -> print(out, String.format(
                        "generation %d started on %d workers from step %d (%s; plan %s)", m.generation(), m.world(), m.fromStep(),
                        m.reason(), m.planHash().substring(0, 12))))
                .onMessage(TrainingEvent.WorkerJoined.class, m -> print(out, "worker joined: " + m.address()
                        + " (admitted at the next checkpoint)"))
                .onMessage(TrainingEvent.StepCompleted.class, m -> m.step() == 0
                        ? print(out, String.format(Locale.ROOT, "step 0 val_loss %.4f (before training)", m.valLoss()))
                        : print(out, String.format(Locale.ROOT,
                        "step %d loss %.4f lr %.2e/%.2e grad_norm %.3f %.1f samples/s (compute %.3f s, comm %.3f s, optimizer %.3f s)%s",
                        m.step(), m.loss(), m.lrUnet(), m.lrTextEncoder(), m.gradNorm(), m.samplesPerS(), m.computeSeconds(),
                        m.commSeconds(), m.optimizerSeconds(),
                        Double.isNaN(m.valLoss()) ? "" : String.format(Locale.ROOT, " val_loss %.4f", m.valLoss()))))
                .onMessage(TrainingEvent.WorkerLost.class, m -> print(out, "worker lost: " + m.address()))
                .onMessage(TrainingEvent.RunFinished.class, m -> {
                    print(out, (m.ok() ? "run finished: " : "run failed: ") + m.message());
                    done.complete(m);
                    return Behaviors.same();
                })
                .build();
    }

    private static Behavior<TrainingEvent> print(Consumer<String> out, String line) {
        out.accept(line);
        return Behaviors.same();
    }
}
