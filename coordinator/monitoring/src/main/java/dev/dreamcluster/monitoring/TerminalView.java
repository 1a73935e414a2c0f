package dev.dreamcluster.monitoring;

import dev.dreamcluster.protocol.TrainingEvent;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * A status block redrawn in place on a terminal: the run, a progress bar with ETA and rate, the last
 * step's numbers and one line per rank with its compute/comm/optimizer split. Event lines that are
 * not steps (members, the start, the end) scroll above it. Redrawing moves the cursor up over the
 * previous block and clears to the end of the screen (ANSI CSI A and J), so lines are kept under 80
 * columns: a wrapped line would make the block taller than the count the cursor moves back.
 */
public final class TerminalView {
    static final int WIDTH = 79;
    static final int BAR = 30;

    private final PrintStream terminal;
    private final RunStatus status = new RunStatus();
    private int drawnLines;
    private boolean ended;

    public TerminalView(PrintStream terminal) {
        this.terminal = terminal;
    }

    /**
     * True when file descriptor {@code fd} (1 stdout, 2 stderr) is a terminal and TERM allows cursor
     * movement. Java has no isatty: on Linux /proc/self/fd/N links to /dev/pts/K or /dev/ttyK;
     * elsewhere System.console() (stdin and stdout both terminals) is the nearest answer.
     */
    public static boolean isTerminal(int fd) {
        String term = System.getenv("TERM");
        if (term == null || term.isEmpty() || term.equals("dumb")) {
            return false;
        }
        Path link = Path.of("/proc/self/fd/" + fd);
        try {
            String target = Files.readSymbolicLink(link).toString();
            return target.startsWith("/dev/pts/") || target.startsWith("/dev/tty");
        } catch (Exception e) {
            return System.console() != null;
        }
    }

    /** Folds the event and redraws; {@code line} (the event's one-line form, may be null) scrolls above unless it is a step. */
    public synchronized void show(TrainingEvent event, String line) {
        status.on(event, System.nanoTime());
        boolean scrolls = line != null && !(event instanceof TrainingEvent.StepCompleted)
                && !(event instanceof TrainingEvent.WorkerStepCompleted);
        if ((ended || (event instanceof TrainingEvent.MemberChanged && drawnLines == 0)) && scrolls) {
            terminal.println(clip(line)); // before the run nothing is drawn yet; after it the last block stays as it is
            terminal.flush();
            return;
        }
        if (ended) {
            return;
        }
        StringBuilder b = new StringBuilder();
        if (drawnLines > 0) {
            b.append("\r\033[").append(drawnLines).append("A\033[J");
        }
        if (scrolls) {
            b.append(clip(line)).append('\n');
        }
        List<String> block = block(status.snapshot());
        for (String l : block) {
            b.append(l).append('\n');
        }
        drawnLines = block.size();
        // the final block is never redrawn: what the command prints next (its result on stdout) goes below it
        ended = event instanceof TrainingEvent.RunFinished;
        terminal.print(b);
        terminal.flush();
    }

    /** The block's lines for a snapshot (each at most {@value #WIDTH} characters). */
    static List<String> block(RunStatus.Snapshot s) {
        List<String> lines = new ArrayList<>();
        lines.add(clip(String.format(Locale.ROOT, "run %s on %d worker%s: %s%s", s.runId() == 0 ? "-" : Long.toString(s.runId()),
                s.workers(), s.workers() == 1 ? "" : "s", s.phase(), s.generation() > 0 ? " (generation " + s.generation() + ")" : "")));
        StringBuilder p = new StringBuilder();
        if (s.totalSteps() > 0) {
            int filled = (int) Math.round(s.progress() * BAR);
            p.append('[').append("#".repeat(filled)).append(".".repeat(BAR - filled)).append("] ");
            p.append(s.step()).append('/').append(s.totalSteps());
            p.append(String.format(Locale.ROOT, " %3.0f%%", s.progress() * 100));
        } else {
            p.append("step ").append(s.step()).append(" (length unknown)");
        }
        p.append("  ETA ").append(duration(s.etaSeconds()));
        if (!Double.isNaN(s.samplesPerS())) {
            p.append(String.format(Locale.ROOT, "  %.1f samples/s", s.samplesPerS()));
        }
        lines.add(clip(p.toString()));
        if (!Double.isNaN(s.loss())) {
            lines.add(clip(String.format(Locale.ROOT, "loss %.4f  val_loss %s  lr %.2e/%.2e  grad_norm %.3f", s.loss(),
                    Double.isNaN(s.valLoss()) ? "-" : String.format(Locale.ROOT, "%.4f@%d", s.valLoss(), s.valLossStep()),
                    s.lrUnet(), s.lrTextEncoder(), s.gradNorm())));
        }
        for (RunStatus.WorkerSplit w : s.split()) {
            String host = w.address().replaceFirst("^akka://[^@]+@", "");
            lines.add(clip(String.format(Locale.ROOT, "rank %d %-21s compute %6.3f s  comm %6.3f s  optimizer %6.3f s", w.rank(), host,
                    w.computeSeconds(), w.commSeconds(), w.optimizerSeconds())));
        }
        if (!s.message().isEmpty()) {
            lines.add(clip(s.message()));
        }
        return lines;
    }

    static String duration(double seconds) {
        if (Double.isNaN(seconds)) {
            return "-";
        }
        long s = Math.round(seconds);
        return s >= 3600 ? String.format(Locale.ROOT, "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60)
                : String.format(Locale.ROOT, "%d:%02d", s / 60, s % 60);
    }

    private static String clip(String line) {
        return line.length() <= WIDTH ? line : line.substring(0, WIDTH - 1) + "~";
    }
}
