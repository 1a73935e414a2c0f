package dev.dreamcluster.worker.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.config.Json;
import dev.dreamcluster.config.TrainConfig;
import dev.dreamcluster.freeze.Component;
import dev.dreamcluster.io.StepMetrics;
import dev.dreamcluster.model.DiffusersFolder;
import dev.dreamcluster.run.TrainingHalted;
import dev.dreamcluster.safetensors.DType;
import dev.dreamcluster.safetensors.SafetensorsFile;
import dev.dreamcluster.worker.fixture.TinyRun;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A run that is not training must say so and stop: every skipped step is named (metrics field,
 * warning, the first non-finite tensor), more consecutive skips than max_skipped_steps halt the run,
 * a run in which no step changed the weights fails, and an lr of 0 everywhere is refused up front.
 * The non-finite gradients come from a model file with one NaN weight (a corrupted checkpoint).
 */
class SkippedStepsTest {
    @TempDir
    static Path tmp;
    static Path poisoned;

    @BeforeAll
    static void inputs() throws Exception {
        TinyRun.writeInputs(tmp, 8);
        poisoned = tmp.resolve("poisoned");
        TinyRun.copyTree(tmp.resolve("model"), poisoned);
        Path unet = DiffusersFolder.weightsFile(poisoned, Component.UNET);
        SafetensorsFile f = SafetensorsFile.open(unet);
        Map<String, SafetensorsFile.Entry> all = new LinkedHashMap<>();
        for (var e : f.tensors().entrySet()) {
            float[] v = f.readFloats(e.getKey());
            if (e.getKey().equals("conv_out.bias")) {
                v[0] = Float.NaN; // the prediction's first channel is NaN: so is every gradient upstream
            }
            all.put(e.getKey(), new SafetensorsFile.Entry(e.getValue().shape(), v));
        }
        SafetensorsFile.write(unet, all, DType.F32, Map.of("format", "pt"));
    }

    static TrainConfig config(Path model, Path out, int steps, Integer maxSkipped) {
        TrainConfig c = new TrainConfig(tmp.resolve("data"), model, out, 30, steps, 2, 2, 9, 64, 1.0, 0.1, 0, 0, 0, 0, 4, 0.02, 0, true,
                100, false);
        JsonNode n = c.toJson();
        if (maxSkipped != null) {
            ((com.fasterxml.jackson.databind.node.ObjectNode) n).put("max_skipped_steps", maxSkipped);
        }
        return TrainConfig.fromJson(n);
    }

    @Test
    void skippedStepsShouldBeNamedAndTooManyInARowShouldHaltTheRun() {
        List<StepMetrics> seen = new ArrayList<>();
        try (Trainer t = new Trainer(config(poisoned, tmp.resolve("halt"), 10, 2), TrainerTest.optimizer(TrainerTest.ADAMW), null,
                w -> { })) {
            seen.add(t.trainStep());
            seen.add(t.trainStep());
            TrainingHalted e = assertThrows(TrainingHalted.class, t::trainStep);
            assertTrue(e.getMessage().contains("step 3: 3 consecutive steps skipped, more than max_skipped_steps 2"), e.getMessage());
            assertTrue(e.getMessage().contains("unet ") && e.getMessage().contains("since step 0"), e.getMessage());
        }
        for (StepMetrics m : seen) {
            assertEquals(0, m.lrUnet());
            assertTrue(m.skipped().startsWith("non-finite gradient, first in unet "), m.skipped());
            JsonNode line = TrainerTest.readTree(m.toJsonLine());
            assertEquals(m.skipped(), line.get("skipped").asText());
        }
    }

    @Test
    void aRunInWhichNoStepChangedTheWeightsShouldFailWithoutAFinalModel() {
        Path out = tmp.resolve("nothing");
        dev.dreamcluster.config.RunConfig run = new dev.dreamcluster.config.RunConfig(config(poisoned, out, 3, 10),
                TrainerTest.optimizer(TrainerTest.ADAMW));
        List<StepMetrics> steps = new ArrayList<>();
        TrainingHalted e = assertThrows(TrainingHalted.class, () -> new TrainLoop(run, null, null, new TrainLoop.StepListener() {
            @Override
            public void stepCompleted(StepMetrics m, int total) {
                steps.add(m);
            }
        }, w -> { }).run());
        assertTrue(e.getMessage().startsWith("no step of this run changed the weights"), e.getMessage());
        assertEquals(4, steps.size()); // step 0 and 3 skipped steps, each reported
        assertFalse(Files.exists(out.resolve("final")), "a final model of a run that never trained");
    }

    @Test
    void aRunWithNothingTrainableShouldBeRefusedBeforeTheFirstStep() {
        // the UNet disabled and every text-encoder tensor frozen: each allowed alone, nothing to train together
        var opt = dev.dreamcluster.config.ConfigResolver.resolve(null, new dev.dreamcluster.config.CliFlags(null, null, null, null, null,
                false, true), new dev.dreamcluster.config.ConfigResolver.Input(TrainerTest.readTree("{'base': {'optimizer': 'adamw', "
                + "'lr': 1e-3}, 'text_encoder_freezing': {'freeze_embeddings': true, 'freeze_front_n_layers': 4, "
                + "'freeze_final_layer_norm': true}}"), "opt.json"), 4);
        ConfigError e = assertThrows(ConfigError.class, () -> new Trainer(config(tmp.resolve("model"), tmp.resolve("zero"), 3, null),
                opt, null, w -> { }).close());
        assertTrue(e.getMessage().startsWith("nothing would train: every tensor of the UNet and the text encoder is frozen"), e.getMessage());
    }

    @Test
    void aHealthyRunShouldReportNoSkippedStep() {
        try (Trainer t = new Trainer(config(tmp.resolve("model"), tmp.resolve("ok"), 2, null), TrainerTest.optimizer(TrainerTest.ADAMW),
                null, w -> { })) {
            StepMetrics m = t.trainStep();
            assertEquals(null, m.skipped());
            assertFalse(TrainerTest.readTree(m.toJsonLine()).has("skipped"));
            assertTrue(m.lrUnet() > 0 && Double.isFinite(m.gradNorm()));
        }
    }
}
