package dev.dreamcluster.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.dreamcluster.protocol.TrainingEvent;
import java.util.List;
import org.junit.jupiter.api.Test;

class ResumeLineTest {
    @Test
    void replacesResumeAndDropsOverwrite() {
        var end = new TrainingEvent.RunFinished(1, false, "stopped (SIGTERM) at a checkpoint; last committed checkpoint: /o/checkpoints/step-000008");
        assertEquals("resume: bin/dreamcluster train --config 'my train.json' --workers 3 --resume /o/checkpoints/step-000008",
                ResumeLine.of("train", List.of("train", "--config", "my train.json", "--overwrite", "--resume", "/o/old", "--workers", "3"),
                        end));
        assertEquals("resume: bin/dreamcluster coordinator --bind 127.0.0.1:2552 --resume /o/checkpoints/step-000008",
                ResumeLine.of("coordinator", List.of("--bind", "127.0.0.1:2552", "--resume=/o/x"), end));
    }

    @Test
    void namesNoCheckpointWhenNoneWasCommitted() {
        var end = new TrainingEvent.RunFinished(1, false, "stopped: SIGTERM; last committed checkpoint: none");
        assertEquals("resume: no checkpoint was committed; start the run again", ResumeLine.of("train", List.of(), end));
    }
}
