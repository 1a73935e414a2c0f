package dev.dreamcluster.coordinator;

import akka.actor.NoSerializationVerificationNeeded;
import akka.actor.typed.ActorRef;
import akka.actor.typed.Behavior;
import akka.actor.typed.PostStop;
import akka.actor.typed.javadsl.ActorContext;
import akka.actor.typed.javadsl.Behaviors;
import dev.dreamcluster.io.MetricsLog;
import dev.dreamcluster.io.StepMetrics;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

/**
 * The coordinator's file I/O, in an actor of its own that the coordinator spawns on Akka's dispatcher
 * for blocking I/O ({@link akka.actor.typed.DispatcherSelector#blocking()}): a slow or full disk then
 * holds up this actor's lines, never the coordinator's handling of workers. It writes metrics.jsonl
 * (rank 0's line of each step, appended and flushed as it comes; see {@link MetricsLog}) and, when the
 * run ends, closes it and names the newest committed checkpoint on disk. The coordinator publishes the
 * run's end only after {@link Closed}, so metrics.jsonl is complete when a launcher sees the end.
 */
final class RunFolder {
    /** Local only: from the coordinator, on its node. */
    sealed interface Command extends NoSerializationVerificationNeeded {}

    /** Append one step's line. */
    record AppendStep(StepMetrics step) implements Command {}

    /** Append a control action's line (see {@link MetricsLog#appendControl}). */
    record AppendControl(int step, long seq, String action, String detail) implements Command {}

    /**
     * Restart the history: a generation starts from a checkpoint and trains the steps after it again,
     * so the next line drops the old lines of those steps.
     */
    enum RestartHistory implements Command {
        INSTANCE
    }

    /** Close metrics.jsonl (the run ended) and answer. */
    record Close(ActorRef<Closed> replyTo) implements Command {}

    /**
     * @param newestCheckpoint the newest checkpoints/step-* holding a trainer_state.json, "none", or
     *     "unknown (why)"; null when there is no checkpoints folder
     */
    record Closed(String newestCheckpoint) implements NoSerializationVerificationNeeded {}

    private final ActorContext<Command> ctx;
    private final Path out;
    /** Opened at the first line, never before: a run refused at the start leaves no file. */
    private final MetricsLog metrics;

    private RunFolder(ActorContext<Command> ctx, Path out) {
        this.ctx = ctx;
        this.out = out;
        this.metrics = new MetricsLog(out);
    }

    /** Spawn it with {@code DispatcherSelector.blocking()}. */
    static Behavior<Command> create(Path out) {
        return Behaviors.setup(ctx -> new RunFolder(ctx, out).receive());
    }

    private Behavior<Command> receive() {
        return Behaviors.receive(Command.class)
                .onMessage(AppendStep.class, m -> write(() -> metrics.append(m.step())))
                .onMessage(AppendControl.class, m -> write(() -> metrics.appendControl(m.step(), m.seq(), m.action(), m.detail())))
                .onMessageEquals(RestartHistory.INSTANCE, () -> write(metrics::restart))
                .onMessage(Close.class, this::onClose)
                .onSignal(PostStop.class, s -> write(metrics::close))
                .build();
    }

    private Behavior<Command> onClose(Close c) {
        write(metrics::close);
        c.replyTo().tell(new Closed(newestCheckpoint(out)));
        return Behaviors.same();
    }

    /** A metrics line that cannot be written costs that line, never the run: warn and go on. */
    private Behavior<Command> write(Runnable io) {
        try {
            io.run();
        } catch (UncheckedIOException e) {
            ctx.getLog().warn("cannot write {}: {}", out.resolve(MetricsLog.FILE), e.getCause().toString());
        }
        return Behaviors.same();
    }

    static String newestCheckpoint(Path out) {
        Path dir = out.resolve("checkpoints");
        if (!Files.isDirectory(dir)) {
            return null;
        }
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(p -> p.getFileName().toString().startsWith("step-")).filter(p -> Files.exists(p.resolve("trainer_state.json")))
                    .map(Path::toString).sorted().reduce((a, b) -> b).orElse("none");
        } catch (IOException e) {
            return "unknown (" + e.getMessage() + ")";
        }
    }
}
