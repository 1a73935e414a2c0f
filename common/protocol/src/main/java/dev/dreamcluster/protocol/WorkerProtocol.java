package dev.dreamcluster.protocol;

import akka.actor.typed.ActorRef;
import akka.actor.typed.receptionist.ServiceKey;

/** What a worker receives from the coordinator. Workers register under {@link #SERVICE}. */
public final class WorkerProtocol {
    public static final ServiceKey<Command> SERVICE = ServiceKey.create(Command.class, "dreamcluster-worker");

    private WorkerProtocol() {}

    public sealed interface Command extends CborSerializable permits Identify, AssignPlan, StartRun, StopRun, AbortGeneration,
            CheckpointAndStop {}

    /** Asks for the worker's data-plane address; answered with CoordinatorProtocol.WorkerIdentified. */
    public record Identify(ActorRef<CoordinatorProtocol.Command> replyTo) implements Command {}

    /** Rank assignment and plan; answered with PlanAccepted or PlanRefused (hash mismatch). */
    public record AssignPlan(RunPlan plan, int rank, ActorRef<CoordinatorProtocol.Command> replyTo) implements Command {}

    /** Every rank accepted: start training. */
    public record StartRun(long runId) implements Command {}

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
}
