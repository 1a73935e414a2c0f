package dev.dreamcluster.run;

/**
 * The run stopped because continuing would train on wrong numbers or not train at all: an operation
 * that is not exact on this machine, more consecutive skipped steps than {@code max_skipped_steps}, a
 * run in which no step changed the weights. Every rank of a cluster run meets it at the same step (the
 * decision is made on all-reduced values), so the run ends without a shrink. The message is one line
 * naming the step, the component or op, and the value; the CLI prints it and exits with {@link #EXIT}.
 */
public class TrainingHalted extends RuntimeException {
    /** The exit status of a command whose run halted. */
    public static final int EXIT = 3;

    public TrainingHalted(String message) {
        super(message);
    }
}
