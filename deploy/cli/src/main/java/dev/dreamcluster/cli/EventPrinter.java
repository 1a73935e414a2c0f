package dev.dreamcluster.cli;

import akka.actor.typed.Behavior;
import akka.actor.typed.javadsl.Behaviors;
import dev.dreamcluster.monitoring.TerminalView;
import dev.dreamcluster.protocol.TrainingEvent;
import java.util.Locale;
import java.util.concurrent.CompletableFuture;
import java.util.function.Consumer;

/**
 * A live view of a run from the TrainingEvent topic: members and their state, generations, a progress
 * line per step (loss, lr, grad norm, samples/s, compute/comm/optimizer split), and the end; on a
 * terminal, a redrawn status block ({@link TerminalView}) instead of the step lines. Completes
 * {@code done} when the run finishes.
 */
final class EventPrinter {
    private EventPrinter() {}

    /**
     * @param lines where one line per event goes (null: nowhere)
     * @param view the terminal's status block (null: none)
     */
    static Behavior<TrainingEvent> create(Consumer<String> lines, TerminalView view, CompletableFuture<TrainingEvent.RunFinished> done) {
        return Behaviors.receive(TrainingEvent.class)
                .onMessage(TrainingEvent.class, e -> {
                    String line = describe(e);
                    if (view != null) {
                        view.show(e, line);
                    }
                    if (lines != null && line != null) {
                        lines.accept(line);
                    }
                    if (e instanceof TrainingEvent.RunFinished f) {
                        done.complete(f);
                    }
                    return Behaviors.same();
                })
                .build();
    }

    /** The event's line, or null for events that only feed the status block (each rank's split). */
    static String describe(TrainingEvent event) {
        if (event instanceof TrainingEvent.MemberChanged m) {
            return String.format("member %s [%s] %s", m.address(), m.roles(), m.status().replace("Member", "").toLowerCase(Locale.ROOT));
        } else if (event instanceof TrainingEvent.RunStarted m) {
            return String.format("run %d started on %d workers (plan %s)", m.runId(), m.workers(), m.planHash().substring(0, 12));
        } else if (event instanceof TrainingEvent.GenerationStarted m) {
            return String.format("generation %d started on %d workers from step %d (%s; plan %s)", m.generation(), m.world(),
                    m.fromStep(), m.reason(), m.planHash().substring(0, 12));
        } else if (event instanceof TrainingEvent.WorkerJoined m) {
            return "worker joined: " + m.address() + " (admitted at the next checkpoint)";
        } else if (event instanceof TrainingEvent.StepCompleted m && m.step() == 0) {
            return String.format(Locale.ROOT, "step 0 val_loss %.4f (before training)", m.valLoss());
        } else if (event instanceof TrainingEvent.StepCompleted m && m.skipped() != null) {
            return String.format(Locale.ROOT, "warning: step %d SKIPPED (no update): %s; loss %.4f grad_norm %s", m.step(), m.skipped(),
                    m.loss(), m.gradNorm());
        } else if (event instanceof TrainingEvent.StepCompleted m) {
            return String.format(Locale.ROOT,
                    "step %d loss %.4f lr %.2e/%.2e grad_norm %.3f %.1f samples/s (compute %.3f s, comm %.3f s, optimizer %.3f s)%s",
                    m.step(), m.loss(), m.lrUnet(), m.lrTextEncoder(), m.gradNorm(), m.samplesPerS(), m.computeSeconds(),
                    m.commSeconds(), m.optimizerSeconds(),
                    Double.isNaN(m.valLoss()) ? "" : String.format(Locale.ROOT, " val_loss %.4f", m.valLoss()));
        } else if (event instanceof TrainingEvent.WorkerLost m) {
            return "worker lost: " + m.address();
        } else if (event instanceof TrainingEvent.ControlRequested m) {
            return "control #" + m.seq() + ": " + m.action() + " requested (" + m.source() + "), at the next step boundary";
        } else if (event instanceof TrainingEvent.ControlApplied m) {
            return "control #" + m.seq() + ": " + m.action() + " applied after step " + m.step() + (m.detail().isEmpty() ? ""
                    : " (" + m.detail() + ")");
        } else if (event instanceof TrainingEvent.RunFinished m) {
            // bad input: the launcher prints the one "error:" line and exits 2
            return m.exitStatus() == TrainingEvent.RunFinished.EXIT_INPUT ? null : (m.ok() ? "run finished: " : "run failed: ") + m.message();
        }
        return null;
    }
}
