package dev.dreamcluster.protocol;

import akka.actor.typed.ActorRef;
import akka.actor.typed.receptionist.ServiceKey;

/** What a worker receives from the coordinator. Workers register under {@link #SERVICE}. */
public final class WorkerProtocol {
    public static final ServiceKey<Command> SERVICE = ServiceKey.create(Command.class, "dreamcluster-worker");

    private WorkerProtocol() {}

    public sealed interface Command extends CborSerializable permits Identify, AssignPlan, StartRun, StopRun, AbortGeneration,
            CheckpointAndStop, Control {}

    /** Asks for the worker's data-plane address; answered with CoordinatorProtocol.WorkerIdentified. */
    public record Identify(ActorRef<CoordinatorProtocol.Command> replyTo) implements Command {}

    /** Rank assignment and plan; answered with PlanAccepted or PlanRefused (hash mismatch). */
    public record AssignPlan(RunPlan plan, int rank, ActorRef<CoordinatorProtocol.Command> replyTo) implements Command {}

    /**
     * Every rank accepted: start training; {@code paused}: the run was paused when this generation was
     * planned (a worker lost while paused): every rank waits for a resume before its first step.
     */
    public record StartRun(long runId, boolean paused) implements Command {
        public StartRun(long runId) {
            this(runId, false);
        }
    }

    /** The run is over (finished, failed or stopped by the user): the worker leaves. */
    public record StopRun(long runId, String reason) implements Command {}

    /**
     * The current generation ends (a peer was lost, or a new worker is admitted): stop training,
     * answer GenerationEnded and wait for the next generation's plan.
     */
    public record AbortGeneration(long runId, int generation, String reason) implements Command {}

    /**
     * The run is being stopped (its launcher got SIGTERM): every rank stops after the step in flight,
     * all at the same step boundary (the ranks agree on it among themselves, with an all-reduced flag),
     * commits a checkpoint there and ends the generation (GenerationEnded); the coordinator then stops
     * the run, naming that checkpoint.
     */
    public record CheckpointAndStop(long runId, int generation, String reason) implements Command {}

    /**
     * A user's control request (see {@link RunControl}), the {@code index}-th of this generation
     * (0, 1, 2, ... in the order sent; Akka keeps one sender's order to one receiver). Every rank
     * counts what it has received; the ranks apply requests 0..k-1 together at the first step
     * boundary where every rank has received k.
     *
     * @param seq the request's number within the run (events and logs name it)
     */
    public record Control(long runId, int generation, int index, long seq, RunControl.Action action, String prompts,
            String promptsFormat) implements Command {}
}
