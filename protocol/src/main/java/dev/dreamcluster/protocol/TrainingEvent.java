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

    record RunFinished(long runId, boolean ok, String message) implements TrainingEvent {}
}
