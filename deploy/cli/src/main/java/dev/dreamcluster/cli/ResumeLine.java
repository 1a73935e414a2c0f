package dev.dreamcluster.cli;

import dev.dreamcluster.coordinator.Coordinator;
import dev.dreamcluster.protocol.TrainingEvent;
import java.util.ArrayList;
import java.util.List;

/**
 * The command that resumes a run stopped at a checkpoint (the launcher got SIGTERM): the same command
 * line with {@code --resume CKPT} instead of any earlier {@code --resume} (and without {@code
 * --overwrite}, which --resume does not allow), printed as one {@code resume: ...} line.
 */
final class ResumeLine {
    private ResumeLine() {}

    /** The checkpoint a stopped run's message names, or null when it names none. */
    static String checkpointOf(TrainingEvent.RunFinished end) {
        String m = end.message();
        int at = m == null ? -1 : m.lastIndexOf(Coordinator.LAST_CHECKPOINT);
        String ckpt = at < 0 ? null : m.substring(at + Coordinator.LAST_CHECKPOINT.length()).trim();
        return ckpt == null || ckpt.isEmpty() || ckpt.equals("none") ? null : ckpt;
    }

    /** {@code resume: bin/dreamcluster COMMAND ARGS --resume CKPT}, or why there is nothing to resume. */
    static String of(String command, List<String> originalArgs, TrainingEvent.RunFinished end) {
        String ckpt = checkpointOf(end);
        if (ckpt == null) {
            return "resume: no checkpoint was committed; start the run again";
        }
        List<String> args = new ArrayList<>(List.of("bin/dreamcluster", command));
        // picocli's original arguments are the whole command line's: the command's name comes first
        for (int i = !originalArgs.isEmpty() && originalArgs.get(0).equals(command) ? 1 : 0; i < originalArgs.size(); i++) {
            String a = originalArgs.get(i);
            if (a.equals("--resume")) {
                i++; // and its value
            } else if (!a.startsWith("--resume=") && !a.equals("--overwrite")) {
                args.add(a);
            }
        }
        args.add("--resume");
        args.add(ckpt);
        return "resume: " + String.join(" ", args.stream().map(ResumeLine::quote).toList());
    }

    /** A shell word: as is when plain, else in single quotes. */
    static String quote(String s) {
        return !s.isEmpty() && s.matches("[A-Za-z0-9_./:=,@%+-]+") ? s : "'" + s.replace("'", "'\\''") + "'";
    }
}
