package dev.dreamcluster.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.dreamcluster.config.Json;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** model-info, init-model and tokenize end to end. */
class ModelCommandsTest {
    @Test
    void modelInfoShouldReportTheRealArchitectures() throws Exception {
        Cli sd15 = Cli.run("model-info", "--preset", "sd15", "--json");
        assertEquals(0, sd15.status(), sd15.err());
        JsonNode j = Json.MAPPER.readTree(sd15.out());
        assertEquals(859_520_964L, j.get("unet").get("parameters").asLong());
        assertEquals(123_060_480L, j.get("text_encoder").get("parameters").asLong());
        assertEquals(196, j.get("text_encoder").get("tensors").asInt());
        assertEquals(12, j.get("text_encoder").get("num_layers").asInt());
        JsonNode sd21 = Json.MAPPER.readTree(Cli.run("model-info", "--preset", "sd21", "--json").out());
        assertEquals(23, sd21.get("text_encoder").get("num_layers").asInt());
        assertEquals(865_910_724L, sd21.get("unet").get("parameters").asLong());
        Cli tensors = Cli.run("model-info", "--preset", "sd15", "--tensors");
        assertEquals(686 + 196 + 248, tensors.out().lines().count());
        assertTrue(tensors.out().contains("unet\tconv_in.weight\t[320, 4, 3, 3]\n"), tensors.out().substring(0, 200));
        Cli.run("model-info", "--preset", "sd3").assertUsageError("--preset", "\"sd3\"", "tiny, medium, sd15, sd21");
    }

    @Test
    void initModelShouldWriteALoadableFolder(@TempDir Path tmp) throws Exception {
        Path dir = tmp.resolve("m");
        Cli r = Cli.run("init-model", "--preset", "tiny", "--out", dir.toString(), "--seed", "3");
        assertEquals(0, r.status(), r.err());
        JsonNode info = Json.MAPPER.readTree(Cli.run("model-info", "--model", dir.toString(), "--json").out());
        JsonNode preset = Json.MAPPER.readTree(Cli.run("model-info", "--preset", "tiny", "--json").out());
        assertEquals(preset, info);
        long bytes;
        try (Stream<Path> s = Files.walk(dir)) {
            bytes = s.filter(Files::isRegularFile).mapToLong(p -> p.toFile().length()).sum();
        }
        assertTrue(bytes < 10_000_000, "tiny is a few MB: " + bytes);
        Cli.run("init-model", "--preset", "tiny", "--out", dir.toString(), "--dtype", "fp8").assertUsageError("--dtype", "fp8");
    }

    @Test
    void tokenizeShouldCountAndWarnOnTruncation(@TempDir Path tmp) throws Exception {
        Path dir = tmp.resolve("m");
        Files.createDirectories(dir.resolve("tokenizer"));
        Path ref = OptimReplayCommandTest.shared().resolve("reference").resolve("clip-tokenizer");
        Files.copy(ref.resolve("vocab.json"), dir.resolve("tokenizer/vocab.json"));
        Files.copy(ref.resolve("merges.txt"), dir.resolve("tokenizer/merges.txt"));
        Cli r = Cli.run("tokenize", "--model", dir.toString(), "--json", "a photo of a cat");
        assertEquals(0, r.status(), r.err());
        JsonNode j = Json.MAPPER.readTree(r.out());
        assertEquals(77, j.get("input_ids").size());
        assertEquals("[49406,320,1125,539,320,2368,49407,49407]", Json.MAPPER.writeValueAsString(
                java.util.List.of(j.get("input_ids").get(0), j.get("input_ids").get(1), j.get("input_ids").get(2),
                        j.get("input_ids").get(3), j.get("input_ids").get(4), j.get("input_ids").get(5),
                        j.get("input_ids").get(6), j.get("input_ids").get(7))));
        assertEquals(5, j.get("length").asInt());
        assertEquals(false, j.get("truncated").asBoolean());
        Cli longer = Cli.run("tokenize", "--model", dir.toString(), "cat ".repeat(80));
        assertEquals(0, longer.status());
        assertTrue(longer.err().startsWith("warning: caption has 80 tokens"), longer.err());
        Cli.run("tokenize", "--model", tmp.toString(), "x").assertUsageError("--model", "tokenizer/vocab.json");
    }
}
