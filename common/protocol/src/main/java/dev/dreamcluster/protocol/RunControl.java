package dev.dreamcluster.protocol;

import java.util.Locale;
import java.util.concurrent.CompletionStage;

/**
 * Live control of a running run, as a user asks for it (the dashboard's buttons, {@code dreamcluster
 * ctl}, the authenticated HTTP routes) and as the coordinator answers. The coordinator numbers each
 * request, sends it to every rank ({@link WorkerProtocol.Control}), and the ranks apply it together at
 * one step boundary (an all-reduced count of the requests each has received), so every rank pauses,
 * checkpoints or stops after the same step.
 */
public final class RunControl {
    private RunControl() {}

    /** What a user can do to a running run; its wire name is the lower-case name. */
    public enum Action {
        /** Commit a checkpoint at the next step boundary and go on. */
        CHECKPOINT,
        /** Commit a checkpoint, write final/, and end the run there (finished, not failed). */
        STOP,
        /** Stop stepping after the next step boundary until RESUME (or STOP); nodes stay up. */
        PAUSE,
        RESUME,
        /** Replace the sample prompts (the text of a sample prompts file) from the next sampling on. */
        SAMPLE_PROMPTS;

        public String wireName() {
            return name().toLowerCase(Locale.ROOT);
        }

        /** The action of a wire name, or null. */
        public static Action ofWireName(String s) {
            for (Action a : values()) {
                if (a.wireName().equals(s)) {
                    return a;
                }
            }
            return null;
        }
    }

    /**
     * @param prompts for SAMPLE_PROMPTS: the prompts file's text; null otherwise
     * @param promptsFormat for SAMPLE_PROMPTS: "txt" (a prompt a line) or "json" (EveryDream2's sample_prompts.json)
     * @param source who asked ("http 127.0.0.1", "ctl"), for the event and the log
     */
    public record Request(Action action, String prompts, String promptsFormat, String source)
            implements akka.actor.NoSerializationVerificationNeeded {}

    /**
     * @param status an HTTP status: 202 accepted (applied at the next step boundary), 409 the run is
     *     not in a state to take it, 400 bad prompts
     * @param seq the request's number within the run (0 when refused)
     */
    public record Reply(int status, long seq, String message) implements akka.actor.NoSerializationVerificationNeeded {}

    /** Where the HTTP routes hand a request: the coordinator on the same node. */
    @FunctionalInterface
    public interface Handler {
        CompletionStage<Reply> request(Request r);
    }
}
