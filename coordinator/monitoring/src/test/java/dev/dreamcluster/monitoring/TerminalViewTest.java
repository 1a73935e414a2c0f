package dev.dreamcluster.monitoring;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dreamcluster.protocol.TrainingEvent;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The status fold (rate, ETA) and the redrawn terminal block. (Under a real terminal: the CLI's TerminalTmuxTest.) */
class TerminalViewTest {
    static TrainingEvent.StepCompleted step(int s) {
        return new TrainingEvent.StepCompleted(7, s, 0.5, 1e-4, 5e-5, 1.25, 16.0, 0.2, 0.05, 0.01, s == 4 ? 0.3 : Double.NaN);
    }

    @Test
    void etaShouldBeRemainingStepsTimesTheMeasuredSecondsPerStep() {
        RunStatus status = new RunStatus();
        status.on(new TrainingEvent.RunStarted(7, 2, "abc", 10), 0);
        assertTrue(Double.isNaN(status.snapshot().etaSeconds()), "no rate before two steps");
        for (int s = 1; s <= 4; s++) {
            status.on(step(s), s * 500_000_000L); // one step every 0.5 s
        }
        RunStatus.Snapshot snap = status.snapshot();
        assertEquals(0.5, snap.secondsPerStep(), 1e-12);
        assertEquals(3.0, snap.etaSeconds(), 1e-9);
        assertEquals(0.4, snap.progress(), 1e-12);
        assertEquals(0.3, snap.valLoss());
        assertEquals(4, snap.valLossStep());
        status.on(new TrainingEvent.RunFinished(7, true, "finished"), 3_000_000_000L);
        assertEquals(0.0, status.snapshot().etaSeconds());
        assertEquals("finished", status.snapshot().phase());
    }

    @Test
    void aNewGenerationShouldRestartTheSplitAndTheRate() {
        RunStatus status = new RunStatus();
        status.on(new TrainingEvent.RunStarted(7, 2, "abc", 10), 0);
        status.on(new TrainingEvent.GenerationStarted(7, 0, 2, 0, "abc", "start"), 0);
        assertEquals(0, status.snapshot().generation());
        for (int s = 1; s <= 3; s++) {
            status.on(step(s), s * 500_000_000L);
            status.on(new TrainingEvent.WorkerStepCompleted(7, 1, "akka://dreamcluster@127.0.0.1:2", s, 8.0, 0.2, 0.05, 0.01), 0);
        }
        assertEquals(1, status.snapshot().split().size());
        status.on(new TrainingEvent.GenerationStarted(7, 1, 1, 2, "def", "shrink: worker lost"), 4_000_000_000L);
        RunStatus.Snapshot snap = status.snapshot();
        assertEquals(1, snap.generation());
        assertEquals(1, snap.workers());
        assertEquals("def", snap.planHash());
        assertTrue(snap.split().isEmpty(), "rank 1 no longer exists");
        assertTrue(Double.isNaN(snap.secondsPerStep()), "the rate restarts with the new world");
        assertEquals("generation 1 from step 2: shrink: worker lost", snap.message());
        assertTrue(TerminalView.block(snap).get(0).endsWith("running (generation 1)"), TerminalView.block(snap).get(0));
    }

    @Test
    void aMonitorThatMissedRunStartedShouldStillFollowTheSteps() {
        RunStatus status = new RunStatus();
        status.on(step(3), 1);
        assertEquals(7, status.snapshot().runId());
        assertEquals("running", status.snapshot().phase());
        assertEquals(0, status.snapshot().totalSteps());
        assertTrue(TerminalView.block(status.snapshot()).get(1).startsWith("step 3 (length unknown)"));
    }

    @Test
    void theBlockShouldBeRedrawnInPlaceWithStepLinesFoldedIntoIt() {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        TerminalView view = new TerminalView(new PrintStream(bytes, true, StandardCharsets.UTF_8));
        view.show(new TrainingEvent.MemberChanged("akka://dreamcluster@127.0.0.1:1", "worker", "MemberUp"), "member up");
        view.show(new TrainingEvent.RunStarted(7, 2, "abc", 10), "run 7 started");
        view.show(new TrainingEvent.WorkerStepCompleted(7, 0, "akka://dreamcluster@127.0.0.1:1", 1, 8.0, 0.2, 0.05, 0.01),
                null);
        view.show(step(1), "step 1 loss 0.5000");
        String text = bytes.toString(StandardCharsets.UTF_8);
        assertTrue(text.startsWith("member up\nrun 7 started\nrun 7 on 2 workers: running\n[" + ".".repeat(30) + "] 0/10"), text);
        // 2 lines drawn after the start, 3 with the worker line: each redraw goes back over the previous block
        assertTrue(text.contains("\r\033[2A\033[J"), text);
        assertTrue(text.contains("\r\033[3A\033[J"), text);
        assertTrue(!text.contains("step 1 loss"), "a step updates the block instead of scrolling");
        List<String> block = TerminalView.block(new RunStatus().snapshot());
        assertEquals("run - on 0 workers: waiting", block.get(0));
        String last = text.substring(text.lastIndexOf("\033[J") + 3);
        assertTrue(last.contains("[###......") && last.contains("] 1/10  10%"), last);
        assertTrue(last.contains("rank 0 127.0.0.1:1"), last);
        for (String l : last.split("\n")) {
            assertTrue(l.length() <= TerminalView.WIDTH, l);
        }
        view.show(new TrainingEvent.RunFinished(7, true, "finished; model in out/final"), "run finished: finished");
        int before = bytes.size();
        view.show(new TrainingEvent.MemberChanged("akka://dreamcluster@127.0.0.1:1", "worker", "MemberLeft"), "member left");
        assertEquals("member left\n", bytes.toString(StandardCharsets.UTF_8).substring(before),
                "after the end the last block stays and later lines go below it (the command's result follows on stdout)");
    }
}
