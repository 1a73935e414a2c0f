package dev.dreamcluster.protocol;

/**
 * What the coordinator publishes on the {@value #TOPIC} topic for monitors: cluster membership and
 * training progress. Delivery is at most once; events are for watching a run, never for control.
 */
public sealed interface TrainingEvent extends CborSerializable {
    String TOPIC = "dreamcluster-training-events";

    record MemberChanged(String address, String roles, String status) implements TrainingEvent {}

    record RunStarted(long runId, int workers, String planHash) implements TrainingEvent {}

    record StepCompleted(long runId, int step, double loss, double lrUnet, double lrTextEncoder, double gradNorm,
            double samplesPerS, double computeSeconds, double commSeconds, double optimizerSeconds, double valLoss)
            implements TrainingEvent {}

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

    record RunFinished(long runId, boolean ok, String message) implements TrainingEvent {}
}
