package dev.dreamcluster.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.dreamcluster.config.Json;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code dreamcluster resolve} on the shipped configs, and its errors. */
class ResolveCommandTest {
    static final Path CONFIGS = Path.of("..", "..", "examples", "configs");

    static JsonNode json(Cli c) throws Exception {
        assertEquals(0, c.status(), c.err());
        return Json.MAPPER.readTree(c.out());
    }

    @Test
    void shouldPrintTheDocumentedJsonForTheShippedTrainJson() throws Exception {
        JsonNode j = json(Cli.run("resolve", "--config", CONFIGS.resolve("train.json").toString(), "--json"));
        JsonNode u = j.get("unet");
        assertEquals("adamw8bit", u.get("optimizer").asText());
        assertEquals(1e-6, u.get("lr").asDouble());
        assertEquals("[0.9,0.999]", u.get("betas").toString());
        assertEquals(1e-8, u.get("epsilon").asDouble());
        assertEquals(0.01, u.get("weight_decay").asDouble());
        assertEquals("constant", u.get("lr_scheduler").asText());
        assertEquals("auto", u.get("lr_warmup_steps").asText());
        assertEquals("auto", u.get("lr_decay_steps").asText());
        assertEquals("optimizer.json:base", u.get("sources").get("lr").asText());
        assertEquals(5e-7, j.get("text_encoder").get("lr").asDouble());
        assertEquals("scaled 0.5 x unet", j.get("text_encoder").get("sources").get("lr").asText());
        JsonNode f = j.get("text_encoder_freezing");
        assertEquals(12, f.get("num_layers").asInt());
        assertEquals("[]", f.get("frozen_layers").toString());
        assertTrue(j.get("warnings").isArray());
    }

    @Test
    void shouldApplyShippedSd21AndLionConfigs() throws Exception {
        JsonNode sd21 = json(Cli.run("resolve", "--optimizer_config", CONFIGS.resolve("optimizerSD21.json").toString(),
                "--text_encoder_layers", "23", "--json"));
        assertEquals(17, sd21.get("text_encoder_freezing").get("frozen_layers").size());
        assertTrue(sd21.get("text_encoder_freezing").get("embeddings_frozen").asBoolean());
        JsonNode lion = json(Cli.run("resolve", "--optimizer_config", CONFIGS.resolve("optimizerLion.json").toString(), "--json"));
        assertEquals("lion", lion.get("unet").get("optimizer").asText());
        assertTrue(lion.get("unet").get("epsilon").isNull());
        assertEquals(1e-7, lion.get("unet").get("lr").asDouble());
        assertEquals(0.1, lion.get("unet").get("weight_decay").asDouble());
    }

    @Test
    void shouldReadLayerCountFromADiffusersFolder(@TempDir Path dir) throws Exception {
        Files.createDirectories(dir.resolve("text_encoder"));
        Files.writeString(dir.resolve("text_encoder").resolve("config.json"), "{\"num_hidden_layers\": 23}");
        JsonNode j = json(Cli.run("resolve", "--model", dir.toString(), "--json"));
        assertEquals(23, j.get("text_encoder_freezing").get("num_layers").asInt());
        Cli.run("resolve", "--model", dir.resolve("nope").toString()).assertUsageError("--model", "text_encoder/config.json");
    }

    @Test
    void shouldPrintATableWithSourcesByDefault() {
        Cli c = Cli.run("resolve", "--config", CONFIGS.resolve("train.json").toString(), "--lr", "3e-6");
        assertEquals(0, c.status());
        assertTrue(c.out().contains("unet           lr               3e-06                      cli"), c.out());
        assertTrue(c.out().contains("scaled 0.5 x unet"), c.out());
    }

    @Test
    void shouldRejectBadInputWithOneLineAndStatus2(@TempDir Path dir) throws Exception {
        Cli.run("resolve", "--lr", "-1").assertUsageError("--lr", "-1.0", "> 0");
        Cli.run("resolve", "--lr", "abc").assertUsageError("--lr", "abc");
        Cli.run("resolve", "--config", dir.resolve("missing.json").toString()).assertUsageError("--config", "missing.json");
        Cli.run("resolve", "--lr_scheduler", "step").assertUsageError("--lr_scheduler", "\"step\"", "cosine_with_restarts");
        Cli.run("resolve", "--text_encoder_layers", "0").assertUsageError("--text_encoder_layers", "0");
        Cli.run("resolve", "--text_encoder_layers", "12", "--model", "x").assertUsageError("mutually exclusive");
        Files.writeString(dir.resolve("o.json"), "{\"base\": {\"betas\": [0.9, 1.5]}}");
        Cli.run("resolve", "--optimizer_config", dir.resolve("o.json").toString(), "--json")
                .assertUsageError("o.json at base.betas", "[0.9, 1.5]", "[0, 1)");
        Files.writeString(dir.resolve("t.json"), "{\"optimizer_config\": \"gone.json\"}");
        Cli.run("resolve", "--config", dir.resolve("t.json").toString()).assertUsageError("optimizer_config", "gone.json");
    }
}
