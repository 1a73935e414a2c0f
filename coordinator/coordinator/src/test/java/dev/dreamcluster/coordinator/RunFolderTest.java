package dev.dreamcluster.coordinator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;

import akka.actor.testkit.typed.javadsl.ActorTestKit;
import akka.actor.testkit.typed.javadsl.TestProbe;
import akka.actor.typed.ActorRef;
import akka.actor.typed.DispatcherSelector;
import dev.dreamcluster.io.StepMetrics;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The coordinator's file I/O actor, on the blocking-I/O dispatcher as the coordinator spawns it. */
class RunFolderTest {
    static final ActorTestKit kit = ActorTestKit.create();

    @AfterAll
    static void stop() {
        kit.shutdownTestKit();
    }

    static StepMetrics step(int n) {
        return new StepMetrics(n, 1.0 / (n + 1), 1e-4, 5e-5, 2.0, 8.0, 0.1, 0.02, 0.01, Double.NaN);
    }

    @Test
    void shouldWriteOneLinePerStepAndKeepEachStepOnceAcrossARestart(@TempDir Path out) throws Exception {
        ActorRef<RunFolder.Command> folder = kit.spawn(RunFolder.create(out), "folder-1", DispatcherSelector.blocking());
        TestProbe<RunFolder.Closed> probe = kit.createTestProbe();
        for (int n = 0; n <= 3; n++) {
            folder.tell(new RunFolder.AppendStep(step(n)));
        }
        // a new generation resumes the checkpoint of step 1: steps 2 and 3 are trained again
        folder.tell(RunFolder.RestartHistory.INSTANCE);
        folder.tell(new RunFolder.AppendStep(step(2)));
        folder.tell(new RunFolder.Close(probe.getRef()));
        assertNull(probe.receiveMessage().newestCheckpoint(), "no checkpoints folder");
        List<String> lines = Files.readAllLines(out.resolve("metrics.jsonl"));
        assertEquals(List.of(step(0).toJsonLine(), step(1).toJsonLine(), step(2).toJsonLine()), lines);
    }

    @Test
    void shouldNameTheNewestCompleteCheckpointWhenItCloses(@TempDir Path out) throws Exception {
        Files.createDirectories(out.resolve("checkpoints/step-000004"));
        Files.writeString(out.resolve("checkpoints/step-000004/trainer_state.json"), "{}");
        Files.createDirectories(out.resolve("checkpoints/step-000008")); // not committed: no trainer_state.json
        ActorRef<RunFolder.Command> folder = kit.spawn(RunFolder.create(out), "folder-2", DispatcherSelector.blocking());
        TestProbe<RunFolder.Closed> probe = kit.createTestProbe();
        folder.tell(new RunFolder.Close(probe.getRef()));
        assertEquals(out.resolve("checkpoints/step-000004").toString(), probe.receiveMessage().newestCheckpoint());
        assertFalse(Files.exists(out.resolve("metrics.jsonl")), "no step, no file");
    }
}
