package dev.dreamcluster.worker.train.ckpt;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CheckpointPrunerTest {
    @Test
    void shouldKeepTheCommittedAndTheNewestOlderOnes(@TempDir Path dir) throws Exception {
        for (String n : List.of("step-000001", "step-000002", "step-000003", "step-000009", "notes", ".step-000004.tmp")) {
            Files.createDirectories(dir.resolve(n).resolve("model"));
        }
        Path committed = Files.createDirectories(dir.resolve("step-000004"));
        assertEquals(List.of(), CheckpointPruner.prune(committed, null), "null keeps all");
        assertEquals(List.of(dir.resolve("step-000002").toAbsolutePath(), dir.resolve("step-000001").toAbsolutePath()),
                CheckpointPruner.prune(committed, 2));
        try (var s = Files.list(dir)) {
            // step-000009 is above the committed step (a run resumed from an earlier one): never touched
            assertEquals(List.of(".step-000004.tmp", "notes", "step-000003", "step-000004", "step-000009"),
                    s.map(p -> p.getFileName().toString()).sorted().toList());
        }
        assertEquals(1, CheckpointPruner.prune(committed, 1).size());
    }
}
