package dev.dreamcluster.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.dreamcluster.config.Json;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The shipped tiny example through the CLI: generated inputs, metrics, checkpoints, final model, resume. */
class TrainCommandTest {
    @Test
    void shouldTrainTheTinyExampleAndResume(@TempDir Path tmp) throws Exception {
        ClusterTrainingTest.example(tmp, false); // the example's files at the settings this test was sized with
        Path out = tmp.resolve("run");
        Cli r = Cli.run("train", "--config", tmp.resolve("train.json").toString(), "--max_steps", "4", "--out", out.toString());
        assertEquals(0, r.status(), r.err());
        assertTrue(Files.isDirectory(tmp.resolve("tiny-model").resolve("unet")), "model generated on first use");
        assertTrue(Files.isDirectory(tmp.resolve("shapes")), "dataset generated on first use");
        List<String> lines = Files.readAllLines(out.resolve("metrics.jsonl"));
        assertEquals(5, lines.size()); // step 0 validation + 4 steps
        JsonNode last = Json.MAPPER.readTree(lines.get(4));
        for (String k : List.of("step", "loss", "lr_unet", "lr_text_encoder", "grad_norm", "samples_per_s", "val_loss")) {
            assertTrue(last.has(k), k + " in " + last);
        }
        assertTrue(Files.isRegularFile(out.resolve("final").resolve("unet").resolve("diffusion_pytorch_model.safetensors")));
        Path ckpt = out.resolve("checkpoints").resolve("step-000004");
        assertTrue(Files.isRegularFile(ckpt.resolve("trainer_state.json")));
        Cli more = Cli.run("train", "--config", tmp.resolve("train.json").toString(), "--max_steps", "6", "--out", out.toString(),
                "--resume", ckpt.toString());
        assertEquals(0, more.status(), more.err());
        assertEquals(7, Files.readAllLines(out.resolve("metrics.jsonl")).size());
        assertTrue(more.out().contains("done: 6 steps"), more.out());
    }

    @Test
    void shouldRejectBadTrainingInput(@TempDir Path tmp) throws Exception {
        Files.writeString(tmp.resolve("t.json"), "{\"data_root\": \"d\", \"resume_ckpt\": \"m\", \"batch_size\": 0}");
        Cli.run("train", "--config", tmp.resolve("t.json").toString()).assertUsageError("batch_size", "0", ">= 1");
        Files.writeString(tmp.resolve("t2.json"), "{\"data_root\": \"d\"}");
        Cli.run("train", "--config", tmp.resolve("t2.json").toString()).assertUsageError("resume_ckpt", "missing");
        Files.writeString(tmp.resolve("t3.json"), "{\"data_root\": \"d\", \"resume_ckpt\": \"m\"}");
        Cli.run("train", "--config", tmp.resolve("t3.json").toString()).assertUsageError("resume_ckpt", "not a diffusers model folder");
        Files.writeString(tmp.resolve("t4.json"), "{\"data_root\": \"d\", \"resume_ckpt\": \"m.ckpt\"}");
        Cli.run("train", "--config", tmp.resolve("t4.json").toString()).assertUsageError("resume_ckpt", "pickled", "arbitrary code");
        Cli.run("train", "--config", tmp.resolve("t3.json").toString(), "--workers", "0").assertUsageError("--workers", "0", "1..64");
        Cli.run("train", "--config", tmp.resolve("t3.json").toString(), "--resume", tmp.toString()).assertUsageError("--resume");
    }
}
