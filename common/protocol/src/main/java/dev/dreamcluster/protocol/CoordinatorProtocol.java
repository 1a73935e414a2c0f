package dev.dreamcluster.protocol;

import akka.actor.typed.ActorRef;

/** What the coordinator receives from workers. */
public final class CoordinatorProtocol {
    private CoordinatorProtocol() {}

    public sealed interface Command extends CborSerializable
            permits WorkerIdentified, PlanAccepted, PlanRefused, StepReported, RunEnded, CheckpointCommitted,
            GenerationEnded, WorkerLeaving, ControlApplied {}

    /**
     * @param dataAddress host:port of the worker's data-plane (ring) socket
     * @param offer its NCCL unique id, or why it cannot run NCCL
     */
    public record WorkerIdentified(ActorRef<WorkerProtocol.Command> worker, String dataAddress, DataPlane.Offer offer)
            implements Command {
        public WorkerIdentified {
            offer = offer == null ? DataPlane.Offer.ring("offered no NCCL id") : offer;
        }

        public WorkerIdentified(ActorRef<WorkerProtocol.Command> worker, String dataAddress) {
            this(worker, dataAddress, null);
        }
    }

    public record PlanAccepted(long runId, int rank) implements Command {}

    public record PlanRefused(long runId, int rank, String reason) implements Command {}

    /**
     * One optimizer step as rank {@code rank} saw it; seconds split into compute, communication and
     * optimizer; {@code valLoss} is NaN when the step ran no validation.
     */
    public record StepReported(long runId, int rank, int step, double loss, double lrUnet, double lrTextEncoder,
            double gradNorm, double samplesPerS, double computeSeconds, double commSeconds, double optimizerSeconds,
            double valLoss, String skipped) implements Command {
        /** An applied step. */
        public StepReported(long runId, int rank, int step, double loss, double lrUnet, double lrTextEncoder, double gradNorm,
                double samplesPerS, double computeSeconds, double commSeconds, double optimizerSeconds, double valLoss) {
            this(runId, rank, step, loss, lrUnet, lrTextEncoder, gradNorm, samplesPerS, computeSeconds, commSeconds,
                    optimizerSeconds, valLoss, null);
        }
    }

    /** The rank finished (ok) or failed (message names why and the last checkpoint). */
    public record RunEnded(long runId, int rank, boolean ok, String message) implements Command {}

    /** Rank 0 committed a checkpoint (renamed into place): the next generation can start from it. */
    public record CheckpointCommitted(long runId, int generation, int step, int totalSteps, String path) implements Command {}

    /**
     * This rank's part of a generation ended without finishing the run (its ring failed, or it was
     * told to abort); the worker stays, ready for the next generation at {@code dataAddress}.
     * {@code stopStatus} 0: a node or ring failure (the run continues in a new generation); otherwise
     * another generation would meet the same failure, so the run stops with that exit status and the
     * message as its one line: {@link TrainingEvent.RunFinished#EXIT_INPUT} for bad input (a file of the
     * rank's data or model copy, a value), {@link TrainingEvent.RunFinished#EXIT_HALTED} for a halted run
     * (an op that is not exact on the rank's machine, too many skipped steps).
     */
    public record GenerationEnded(long runId, int generation, int rank, String message,
            ActorRef<WorkerProtocol.Command> worker, String dataAddress, int stopStatus) implements Command {
        public GenerationEnded(long runId, int generation, int rank, String message, ActorRef<WorkerProtocol.Command> worker,
                String dataAddress) {
            this(runId, generation, rank, message, worker, dataAddress, 0);
        }
    }

    /**
     * The rank's node is going away (SIGTERM: a spot notice, a deleted pod, a scale-down) and stays up,
     * for a bounded grace, until the generation ends at the next step boundary with a committed
     * checkpoint. The coordinator counts the worker as lost from now on (it takes no rank in the next
     * generation, which starts from that checkpoint with the others), but lets the current generation
     * run to its boundary: the ranks agree on the step among themselves (an all-reduced flag), and end
     * it with GenerationEnded.
     */
    public record WorkerLeaving(long runId, int generation, int rank, ActorRef<WorkerProtocol.Command> worker, String reason)
            implements Command {}

    /**
     * Rank 0 applied control request {@code seq} (with every other rank) after {@code step}; {@code
     * detail} says what it did (the checkpoint's path, "paused", the prompts' count).
     */
    public record ControlApplied(long runId, int generation, long seq, RunControl.Action action, int step, String detail)
            implements Command {}
}
