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

    /** @param skipped why the step's update was skipped (nothing changed), or null when it was applied */
    record StepCompleted(long runId, int step, double loss, double lrUnet, double lrTextEncoder, double gradNorm,
            double samplesPerS, double computeSeconds, double commSeconds, double optimizerSeconds, double valLoss, String skipped)
            implements TrainingEvent {
        /** An applied step. */
        public StepCompleted(long runId, int step, double loss, double lrUnet, double lrTextEncoder, double gradNorm,
                double samplesPerS, double computeSeconds, double commSeconds, double optimizerSeconds, double valLoss) {
            this(runId, step, loss, lrUnet, lrTextEncoder, gradNorm, samplesPerS, computeSeconds, commSeconds, optimizerSeconds,
                    valLoss, null);
        }
    }

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

    /**
     * @param exitStatus what a launcher exits with: 0 finished; {@link #EXIT_INPUT} bad input a worker met,
     *     {@link #EXIT_HALTED} any other failure (a halted run, lost workers); with 2 and 3 the launcher
     *     prints the message as its one "error:" line
     */
    record RunFinished(long runId, boolean ok, String message, int exitStatus) implements TrainingEvent {
        public static final int EXIT_INPUT = 2;
        public static final int EXIT_HALTED = 3;

        public RunFinished(long runId, boolean ok, String message) {
            this(runId, ok, message, ok ? 0 : EXIT_HALTED);
        }

        /** Bad input: the message is the input error's own line (no "run failed:" before it). */
        public boolean inputError() {
            return exitStatus == EXIT_INPUT;
        }
    }

    /**
     * A user asked for a control action ({@link RunControl}); it is applied at the next step boundary.
     *
     * @param action the action's wire name
     */
    record ControlRequested(long runId, long seq, String action, String source) implements TrainingEvent {}

    /** Every rank applied control request {@code seq} after {@code step}. */
    record ControlApplied(long runId, long seq, String action, int step, String detail) implements TrainingEvent {}
}
