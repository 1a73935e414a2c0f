package dev.dreamcluster.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import com.fasterxml.jackson.databind.JsonNode;
import dev.dreamcluster.config.Json;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

/** optim-replay end to end against every case of the shared reference vectors, bytes for bytes. */
class OptimReplayCommandTest {
    static final Path VECTORS = shared().resolve("reference").resolve("optim-vectors");

    static Path shared() {
        String p = System.getProperty("dreamcluster.shared");
        return (p != null && Files.isDirectory(Path.of(p)) ? Path.of(p) : Path.of("..", "..", "..", "shared")).toAbsolutePath();
    }

    static JsonNode testCase(String name) throws Exception {
        for (JsonNode c : Json.MAPPER.readTree(VECTORS.resolve("manifest.json").toFile()).get("cases")) {
            if (c.get("name").asText().equals(name)) {
                return c;
            }
        }
        throw new IllegalArgumentException(name);
    }

    @ParameterizedTest
    @ValueSource(strings = {"adamw_n7", "adamw_n4096", "adamw8bit_n7", "adamw8bit_n4096", "lion_n7", "lion_n4096",
            "lion8bit_n7", "lion8bit_n4096"})
    void shouldReplayReferenceCasesBitExactly(String name, @TempDir Path dir) throws Exception {
        JsonNode c = testCase(name);
        JsonNode in = Json.MAPPER.readTree(VECTORS.resolve("manifest.json").toFile()).get("inputs").get(c.get("inputs").asText());
        JsonNode h = c.get("hyperparams");
        List<String> args = new ArrayList<>(List.of("optim-replay", "--optimizer", c.get("optimizer").asText(),
                "--lr", h.get("lr").asText(), "--betas", h.get("betas").get(0).asText() + "," + h.get("betas").get(1).asText(),
                "--weight_decay", h.get("weight_decay").asText(),
                "--params0", VECTORS.resolve(in.get("params0").asText()).toString(),
                "--grads", VECTORS.resolve(in.get("grads").asText()).toString(),
                "--steps", c.get("K").asText(), "--out", dir.resolve("out.bin").toString(),
                "--state_out", dir.resolve("state").toString()));
        if (h.has("eps")) {
            args.addAll(List.of("--eps", h.get("eps").asText()));
        }
        Cli r = Cli.run(args.toArray(String[]::new));
        assertEquals(0, r.status(), r.err());
        assertArrayEquals(Files.readAllBytes(VECTORS.resolve(c.get("expected_params").asText())),
                Files.readAllBytes(dir.resolve("out.bin")), "params");
        JsonNode fin = c.get("final_state");
        for (String key : List.of("state1", "state2", "absmax1", "absmax2", "state1_fp32", "state2_fp32", "exp_avg", "exp_avg_sq")) {
            if (fin.has(key)) {
                String file = key.startsWith("exp_avg_sq") || key.equals("state2_fp32") ? "state2.bin"
                        : key.startsWith("exp_avg") || key.equals("state1_fp32") ? "state1.bin" : key + ".bin";
                assertArrayEquals(Files.readAllBytes(VECTORS.resolve(fin.get(key).asText())),
                        Files.readAllBytes(dir.resolve("state").resolve(file)), key);
            }
        }
    }

    @Test
    void shouldRejectBadInputsWithoutWritingAnything(@TempDir Path dir) throws Exception {
        Files.write(dir.resolve("p.bin"), new byte[28]);
        Files.write(dir.resolve("g.bin"), new byte[24]);
        Path out = dir.resolve("out.bin");
        String[] base = {"optim-replay", "--optimizer", "adamw", "--lr", "1e-3", "--betas", "0.9,0.999",
                "--weight_decay", "0", "--params0", dir.resolve("p.bin").toString(), "--out", out.toString()};
        Cli.run(concat(base, "--grads", dir.resolve("g.bin").toString())).assertUsageError("--grads", "multiple of n = 7");
        Files.write(dir.resolve("g.bin"), new byte[56]);
        Cli.run(concat(base, "--grads", dir.resolve("g.bin").toString(), "--steps", "3")).assertUsageError("--steps", "1..2");
        Cli.run(concat(base, "--grads", dir.resolve("nope.bin").toString())).assertUsageError("--grads", "nope.bin");
        String[] sgd = base.clone();
        sgd[2] = "sgd";
        Cli.run(concat(sgd, "--grads", dir.resolve("g.bin").toString())).assertUsageError("--optimizer", "\"sgd\"", "lion8bit");
        String[] badBetas = base.clone();
        badBetas[6] = "0.9";
        Cli.run(concat(badBetas, "--grads", dir.resolve("g.bin").toString())).assertUsageError("--betas");
        assertFalse(Files.exists(out));
        Cli ok = Cli.run(concat(base, "--grads", dir.resolve("g.bin").toString()));
        assertEquals(0, ok.status(), ok.err());
        assertEquals(56, Files.size(out));
    }

    static String[] concat(String[] a, String... b) {
        String[] r = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, r, a.length, b.length);
        return r;
    }
}
