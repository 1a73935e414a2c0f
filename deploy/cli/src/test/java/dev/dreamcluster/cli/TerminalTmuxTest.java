package dev.dreamcluster.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code train --workers 2} in a real terminal (a tmux pane), and {@code monitor} joined to it in a
 * second pane: stderr is a terminal, so each shows one status block redrawn in place (its progress
 * bar advancing, one line per rank) instead of a line per step. tmux's capture-pane reads the
 * screens. Skipped where tmux is not installed.
 */
class TerminalTmuxTest {
    static final int STEPS = 16;
    static final Pattern BAR = Pattern.compile("^\\[([#.]{30})\\] (\\d+)/(\\d+) ");

    @Test
    void theStatusBlockShouldRedrawWithAnAdvancingProgressBar(@TempDir Path tmp) throws Exception {
        assumeTrue(Files.isExecutable(Path.of("/usr/bin/tmux")), "tmux is not installed (/usr/bin/tmux; Debian package tmux)");
        Path trainJson = ClusterTrainingTest.example(tmp);
        int port = ClusterTrainingTest.freePort();
        Path train = script(tmp.resolve("train.sh"), "train", "--config", q(trainJson.toString()), "--workers", "2", "--max_steps",
                Integer.toString(STEPS), "--out", q(tmp.resolve("run").toString()), "--coordinator_bind", "127.0.0.1:" + port, "--keys", q(TestKeys.node(tmp)));
        Path monitor = script(tmp.resolve("monitor.sh"), "monitor", "--join", "127.0.0.1:" + port, "--keys", q(TestKeys.node(tmp)));
        String socket = "dreamcluster-test-" + ProcessHandle.current().pid();
        // the panes stay after their commands so the last screens can be read
        tmux(socket, "-f", "/dev/null", "new-session", "-d", "-s", "run", "-x", "100", "-y", "80", // tall enough that the nodes' exit lines never scroll the block off
                "bash " + q(train.toString()) + "; echo EXIT=$?; sleep 120");
        Thread.sleep(1500); // the coordinator node is up well before the worker JVMs have loaded DJL
        tmux(socket, "new-window", "-d", "-t", "run:1", "bash " + q(monitor.toString()) + "; echo EXIT=$?; sleep 120");
        try {
            Pane trainPane = new Pane(socket, "run:0", "train");
            Pane monitorPane = new Pane(socket, "run:1", "monitor");
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(240);
            while (!(trainPane.ended() && monitorPane.ended()) && System.nanoTime() < deadline) {
                Thread.sleep(150);
                trainPane.capture();
                monitorPane.capture();
            }
            trainPane.check();
            monitorPane.check();
            assertTrue(trainPane.screen.contains("\ndone: finished"), "the command's result follows the last block:\n" + trainPane.screen);
        } finally {
            tmux(socket, "kill-server");
        }
    }

    /** One pane's screens as they were captured: the steps its bar showed, in order, and the last screen. */
    static final class Pane {
        final String socket;
        final String target;
        final String what;
        final List<Integer> steps = new ArrayList<>();
        String screen = "";

        Pane(String socket, String target, String what) {
            this.socket = socket;
            this.target = target;
            this.what = what;
        }

        boolean ended() {
            return screen.contains("EXIT=");
        }

        void capture() throws Exception {
            if (ended()) {
                return;
            }
            screen = tmux(socket, "capture-pane", "-p", "-t", target);
            int bars = 0;
            for (String line : screen.split("\n")) {
                Matcher m = BAR.matcher(line);
                if (m.find()) {
                    bars++;
                    assertEquals(Integer.toString(STEPS), m.group(3), line);
                    int step = Integer.parseInt(m.group(2));
                    int filled = m.group(1).indexOf('.') < 0 ? 30 : m.group(1).indexOf('.');
                    assertEquals((int) Math.round(30.0 * step / STEPS), filled, "the bar's length says the step: " + line);
                    if (steps.isEmpty() || steps.get(steps.size() - 1) != step) {
                        steps.add(step);
                    }
                }
            }
            assertTrue(bars <= 1, what + ": one block, redrawn in place:\n" + screen);
        }

        void check() {
            assertTrue(screen.contains("EXIT=0"), what + " ended well:\n" + screen);
            assertTrue(steps.size() >= 3, what + ": the bar advanced (steps seen " + steps + "):\n" + screen);
            for (int i = 1; i < steps.size(); i++) {
                assertTrue(steps.get(i) > steps.get(i - 1), what + ": steps seen " + steps);
            }
            assertEquals(STEPS, steps.get(steps.size() - 1), screen);
            assertTrue(screen.contains("rank 0 127.0.0.1:") && screen.contains("rank 1 127.0.0.1:"), what + ": one line per rank:\n" + screen);
            assertTrue(screen.contains(": finished"), screen);
            assertEquals(1, Pattern.compile("(?m)^run \\d+ on 2 workers: ").matcher(screen).results().count(),
                    what + ": no stale copy of the block's first line:\n" + screen);
            assertFalse(Pattern.compile("(?m)^step \\d+ loss ").matcher(screen).find(), what + ": no line per step on a terminal:\n"
                    + screen);
            System.out.println(what + "'s tmux pane at the end (steps seen " + steps + "):\n" + screen);
        }
    }

    /** A script that runs this build's Main with {@code args} (already quoted for the shell). */
    static Path script(Path file, String... args) throws Exception {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Files.writeString(file, "exec " + q(java) + " -Dai.djl.offline=true -cp " + q(System.getProperty("java.class.path")) + " "
                + Main.class.getName() + " " + String.join(" ", args) + "\n", StandardCharsets.UTF_8);
        return file;
    }

    static String q(String s) {
        return "'" + s.replace("'", "'\\''") + "'";
    }

    static String tmux(String socket, String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("tmux", "-L", socket));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        p.waitFor(30, TimeUnit.SECONDS);
        return out;
    }
}
