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
 * {@code train --workers 2} in a real terminal (a tmux pane): stderr is a terminal, so the run shows
 * one status block redrawn in place (its progress bar advancing, one line per rank) instead of a line
 * per step. tmux's capture-pane reads the screen. Skipped where tmux is not installed.
 */
class TerminalTmuxTest {
    static final int STEPS = 16;
    static final Pattern BAR = Pattern.compile("^\\[([#.]{30})\\] (\\d+)/(\\d+) ");

    @Test
    void theStatusBlockShouldRedrawWithAnAdvancingProgressBar(@TempDir Path tmp) throws Exception {
        assumeTrue(Files.isExecutable(Path.of("/usr/bin/tmux")), "tmux is not installed (/usr/bin/tmux; Debian package tmux)");
        Path trainJson = ClusterTrainingTest.example(tmp);
        Path script = tmp.resolve("run.sh");
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Files.writeString(script, String.join(" ", "exec", q(java), "-Dai.djl.offline=true", "-cp", q(System.getProperty("java.class.path")),
                Main.class.getName(), "train", "--config", q(trainJson.toString()), "--workers", "2", "--max_steps",
                Integer.toString(STEPS), "--out", q(tmp.resolve("run").toString())) + "\n", StandardCharsets.UTF_8);
        String socket = "dreamcluster-test-" + ProcessHandle.current().pid();
        // the pane stays after the command so the last screen can be read
        tmux(socket, "-f", "/dev/null", "new-session", "-d", "-s", "run", "-x", "100", "-y", "40",
                "bash " + q(script.toString()) + "; echo EXIT=$?; sleep 120");
        try {
            List<Integer> steps = new ArrayList<>();
            String screen = "";
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(240);
            while (!screen.contains("EXIT=") && System.nanoTime() < deadline) {
                Thread.sleep(150);
                screen = tmux(socket, "capture-pane", "-p", "-t", "run");
                int bars = 0;
                for (String line : screen.split("\n")) {
                    Matcher m = BAR.matcher(line);
                    if (m.find()) {
                        bars++;
                        assertEquals(Integer.toString(STEPS), m.group(3), line);
                        int step = Integer.parseInt(m.group(2));
                        assertEquals((int) Math.round(30.0 * step / STEPS), m.group(1).indexOf('.') < 0 ? 30 : m.group(1).indexOf('.'),
                                "the bar's length says the step: " + line);
                        if (steps.isEmpty() || steps.get(steps.size() - 1) != step) {
                            steps.add(step);
                        }
                    }
                }
                assertTrue(bars <= 1, "one block, redrawn in place:\n" + screen);
            }
            assertTrue(screen.contains("EXIT=0"), "the run ended well:\n" + screen);
            assertTrue(steps.size() >= 3, "the bar advanced (steps seen " + steps + "):\n" + screen);
            for (int i = 1; i < steps.size(); i++) {
                assertTrue(steps.get(i) > steps.get(i - 1), "steps seen " + steps);
            }
            assertEquals(STEPS, steps.get(steps.size() - 1), screen);
            assertTrue(screen.contains("rank 0 127.0.0.1:") && screen.contains("rank 1 127.0.0.1:"), "one line per rank:\n" + screen);
            assertTrue(screen.contains(": finished"), screen);
            assertEquals(1, Pattern.compile("(?m)^run \\d+ on 2 workers: ").matcher(screen).results().count(),
                    "no stale copy of the block's first line:\n" + screen);
            assertTrue(screen.contains("\ndone: finished"), "the command's result follows the last block:\n" + screen);
            assertFalse(Pattern.compile("(?m)^step \\d+ loss ").matcher(screen).find(), "no line per step on a terminal:\n" + screen);
            System.out.println("tmux pane at the end (steps seen " + steps + "):\n" + screen);
        } finally {
            tmux(socket, "kill-server");
        }
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
