package dev.dreamcluster.protocol;

/**
 * What the coordinator publishes on the {@value #TOPIC} topic for monitors: cluster membership and
 * training progress. Delivery is at most once; events are for watching a run, never for control.
 */
public sealed interface TrainingEvent extends CborSerializable {
    String TOPIC = "dreamcluster-training-events";

    record MemberChanged(String address, String roles, String status) implements TrainingEvent {}

    /** @param totalSteps the run's length in optimizer steps, 0 when the coordinator does not know it */
    record RunStarted(long runId, int workers, String planHash, int totalSteps) implements TrainingEvent {}

    record StepCompleted(long runId, int step, double loss, double lrUnet, double lrTextEncoder, double gradNorm,
            double samplesPerS, double computeSeconds, double commSeconds, double optimizerSeconds, double valLoss)
            implements TrainingEvent {}

    /**
     * One rank's view of a step (every rank, every step): where its time went, for the per-worker
     * split of the monitors. {@code address} is the rank's cluster address.
     */
    record WorkerStepCompleted(long runId, int rank, String address, int step, double samplesPerS, double computeSeconds,
            double commSeconds, double optimizerSeconds) implements TrainingEvent {}

    record WorkerLost(long runId, String address) implements TrainingEvent {}

    /** A worker joined while the run was going; it is admitted at the next checkpoint (up to max_workers). */
    record WorkerJoined(long runId, String address) implements TrainingEvent {}

    /**
     * A generation started: {@code world} ranks from {@code fromStep} (0, or the checkpoint it resumes).
     *
     * @param reason "start", "shrink: ..." or "grow: ..."
     */
    record GenerationStarted(long runId, int generation, int world, int fromStep, String planHash, String reason)
            implements TrainingEvent {}

    /** {@code inputError}: the run stopped on bad input a worker met (the launcher exits 2 with the message). */
    record RunFinished(long runId, boolean ok, String message, boolean inputError) implements TrainingEvent {
        public RunFinished(long runId, boolean ok, String message) {
            this(runId, ok, message, false);
        }
    }
}
