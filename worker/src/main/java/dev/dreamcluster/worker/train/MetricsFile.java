package dev.dreamcluster.worker.train;

import com.fasterxml.jackson.databind.JsonNode;
import dev.dreamcluster.config.Json;
import dev.dreamcluster.io.AtomicFiles;
import java.io.IOException;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/**
 * metrics.jsonl of one run. A fresh run starts it empty; a run resumed from step S keeps the lines
 * up to S and drops later ones (they belong to the steps the resumed run trains again), so the file
 * always reads as one run's history with each step once. One run per folder holds it
 * ({@code OutputLock}), so two runs never append to it.
 */
final class MetricsFile {
    private MetricsFile() {}

    static Writer continueAt(Path file, int startStep) throws IOException {
        if (startStep == 0 || !Files.exists(file)) {
            return Files.newBufferedWriter(file, StandardCharsets.UTF_8, StandardOpenOption.CREATE,
                    StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE);
        }
        List<String> keep = new ArrayList<>();
        for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
            JsonNode n;
            try {
                n = Json.MAPPER.readTree(line);
            } catch (IOException e) {
                continue; // a line torn by a crash
            }
            if (n != null && n.path("step").canConvertToInt() && n.path("step").asInt() <= startStep) {
                keep.add(line);
            }
        }
        AtomicFiles.writeString(file, keep.isEmpty() ? "" : String.join("\n", keep) + "\n");
        return Files.newBufferedWriter(file, StandardCharsets.UTF_8, StandardOpenOption.APPEND, StandardOpenOption.WRITE);
    }
}
