package dev.dreamcluster.worker.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dreamcluster.config.ComponentConfig;
import dev.dreamcluster.config.ConfigResolver;
import dev.dreamcluster.config.Json;
import dev.dreamcluster.config.ResolvedTrainingConfig;
import dev.dreamcluster.config.TrainConfig;
import dev.dreamcluster.freeze.Component;
import dev.dreamcluster.io.StepMetrics;
import dev.dreamcluster.model.DiffusersFolder;
import dev.dreamcluster.safetensors.DType;
import dev.dreamcluster.safetensors.SafetensorsFile;
import dev.dreamcluster.worker.fixture.TinyRun;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * "Your train.json, the same result", end to end: 20 steps of the example's step settings (64 px,
 * batch 4, grad_accum 2, clip 1.0, cond_dropout 0.04, offset noise 0.02, AdamW on the UNet and the
 * text encoder at half its lr) with EveryDream2's default loss (mse_huber) on the tiny model, against a training loop of diffusers' UNet2DConditionModel,
 * transformers' CLIPTextModel and torch's AdamW fed exactly the latents, noise, timesteps and token
 * ids DreamCluster drew (recorded once by {@code src/test/python/record_training.py}; see
 * {@code src/test/resources/reference/README.md}).
 *
 * <p>The reference ran twice, in float64 and in float32. The distance between those two runs is what
 * float32 arithmetic alone does to this training through Adam (which turns tiny gradient differences
 * into lr-sized steps where a gradient is near zero); DreamCluster's float32 run must land within
 * {@link #SLACK} times that distance of the float64 run, per tensor, in relative L2 of the update, and
 * its per-step loss and grad_norm must match the float64 run's.
 */
class TorchReferenceTrainingTest {
    static final int STEPS = 20;
    /** How many times torch's own float32-vs-float64 distance DreamCluster may be from the float64 run. */
    static final double SLACK = 4;
    static final String REFERENCE = "/reference/training/tiny-20-steps.safetensors";

    @TempDir
    static Path tmp;

    static TrainConfig config() {
        TrainConfig basic = new TrainConfig(tmp.resolve("data"), tmp.resolve("model"), tmp.resolve("out"), 30, STEPS, 4, 2, 555, 64,
                1.0, 0.04, 0, 0, 0, 0, 0, 0.02, 0, true, 100, false);
        return basic;
    }

    static ResolvedTrainingConfig optimizer() {
        return ConfigResolver.resolve(null, dev.dreamcluster.config.CliFlags.NONE, new ConfigResolver.Input(TrainerTest.readTree(
                "{'base': {'optimizer': 'adamw', 'lr': 5e-4, 'betas': [0.9, 0.999], 'epsilon': 1e-8, 'weight_decay': 0.01},"
                        + " 'text_encoder_lr_scale': 0.5}"), "opt.json"), 4);
    }

    /** One run of DreamCluster with every micro-batch's inputs recorded. */
    record Run(Map<String, SafetensorsFile.Entry> inputs, List<StepMetrics> steps, Path model) {}

    static Run train() {
        TinyRun.writeInputs(tmp, 12);
        Map<String, SafetensorsFile.Entry> inputs = new LinkedHashMap<>();
        List<StepMetrics> steps = new ArrayList<>();
        try (Trainer t = new Trainer(config(), optimizer(), null, w -> { })) {
            t.recordInputs((micro, latents, noise, timesteps, ids, shape) -> {
                String p = "micro" + micro + ".";
                inputs.put(p + "latents", new SafetensorsFile.Entry(shape, latents));
                inputs.put(p + "noise", new SafetensorsFile.Entry(shape, noise));
                float[] ts = new float[timesteps.length];
                for (int i = 0; i < ts.length; i++) {
                    ts[i] = timesteps[i]; // < 1000: exact in float32
                }
                inputs.put(p + "timesteps", new SafetensorsFile.Entry(new long[] {ts.length}, ts));
                float[] idf = new float[ids.length];
                for (int i = 0; i < ids.length; i++) {
                    idf[i] = ids[i]; // < 2^24: exact in float32
                }
                inputs.put(p + "input_ids", new SafetensorsFile.Entry(new long[] {timesteps.length, ids.length / timesteps.length}, idf));
            });
            for (int s = 0; s < STEPS; s++) {
                steps.add(t.trainStep());
            }
            t.saveModel(tmp.resolve("final"), DType.F32);
        }
        return new Run(inputs, steps, tmp.resolve("final"));
    }

    /** What the Python recorder needs besides the inputs: the settings and the per-step lrs, as metadata. */
    static Map<String, String> settings(List<StepMetrics> steps) {
        ObjectNode n = Json.MAPPER.createObjectNode();
        TrainConfig c = config();
        n.put("steps", STEPS).put("grad_accum", c.gradAccum()).put("clip_grad_norm", c.clipGradNorm()).put("clip_skip", c.clipSkip());
        // the loss: EveryDream2's loss_type (TrainFeatures.DEFAULTS: mse_huber, its argparse default), no min-SNR weighting
        n.put("loss_type", c.features().lossType().key()).put("min_snr_gamma", c.features().minSnrGamma())
                .put("embedding_perturbation", c.features().embeddingPerturbation());
        ResolvedTrainingConfig o = optimizer();
        for (Component comp : new Component[] {Component.UNET, Component.TEXT_ENCODER}) {
            ComponentConfig cc = comp == Component.UNET ? o.unet() : o.textEncoder();
            ObjectNode x = n.putObject(comp.folder());
            x.put("optimizer", cc.optimizer().toString()).put("beta1", cc.beta1()).put("beta2", cc.beta2()).put("eps", cc.epsilon())
                    .put("weight_decay", cc.weightDecay());
            ArrayNode lrs = x.putArray("lr");
            for (StepMetrics m : steps) {
                lrs.add(comp == Component.UNET ? m.lrUnet() : m.lrTextEncoder());
            }
        }
        return Map.of("settings", n.toString());
    }

    /** SHA-256 over every recorded input in order: the reference is only valid for these exact inputs. */
    static String inputsDigest(Map<String, SafetensorsFile.Entry> inputs) {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            for (Map.Entry<String, SafetensorsFile.Entry> e : inputs.entrySet()) {
                md.update(e.getKey().getBytes(java.nio.charset.StandardCharsets.UTF_8));
                java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(e.getValue().values().length * 4).order(java.nio.ByteOrder.LITTLE_ENDIAN);
                b.asFloatBuffer().put(e.getValue().values());
                md.update(b);
            }
            return HexFormat.of().formatHex(md.digest());
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    @Test
    void twentyStepsShouldLandWhereTorchsTrainingLoopDoes() throws Exception {
        Run run = train();
        String inputsSha = inputsDigest(run.inputs());
        Path record = Path.of(System.getProperty("dreamcluster.record.dir", "target/reference-inputs"));
        Files.createDirectories(record);
        Map<String, String> meta = new LinkedHashMap<>(settings(run.steps()));
        meta.put("inputs_sha256", inputsSha);
        // always written: re-recording the reference needs exactly these files (README in reference/)
        SafetensorsFile.write(record.resolve("inputs.safetensors"), run.inputs(), DType.F32, meta);
        deleteTree(record.resolve("model")); // a rerun without mvn clean: copyTree does not overwrite
        TinyRun.copyTree(tmp.resolve("model"), record.resolve("model"));
        Path ref = referenceFile();
        SafetensorsFile f = SafetensorsFile.open(ref);
        assertEquals(f.metadata().get("inputs_sha256"), inputsSha, "DreamCluster's draws changed since the reference was recorded: "
                + "re-record it from " + record.toAbsolutePath() + " (src/test/resources/reference/README.md)");
        double[] refLoss = Json.MAPPER.readValue(f.metadata().get("loss_float64"), double[].class);
        double[] refNorm = Json.MAPPER.readValue(f.metadata().get("grad_norm_float64"), double[].class);
        double worstLoss = 0;
        double worstNorm = 0;
        for (int s = 0; s < STEPS; s++) {
            System.out.printf("step %2d: loss %.9f (torch float64 %.9f), grad_norm %.9f (torch float64 %.9f)%n", s + 1,
                    run.steps().get(s).loss(), refLoss[s], run.steps().get(s).gradNorm(), refNorm[s]);
            worstLoss = Math.max(worstLoss, Math.abs(run.steps().get(s).loss() - refLoss[s]) / refLoss[s]);
            worstNorm = Math.max(worstNorm, Math.abs(run.steps().get(s).gradNorm() - refNorm[s]) / refNorm[s]);
        }
        System.out.printf("torch reference, %d steps: worst per-step loss %.2e, grad_norm %.2e relative%n", STEPS, worstLoss, worstNorm);
        double worstRatio = 0;
        String worstName = "";
        com.fasterxml.jackson.databind.JsonNode torch32 = Json.MAPPER.readTree(f.metadata().get("float32_distance"));
        for (Component c : new Component[] {Component.UNET, Component.TEXT_ENCODER}) {
            SafetensorsFile ours = SafetensorsFile.open(DiffusersFolder.weightsFile(run.model(), c));
            SafetensorsFile init = SafetensorsFile.open(DiffusersFolder.weightsFile(tmp.resolve("model"), c));
            for (String name : ours.tensors().keySet()) {
                float[] w0 = init.readFloats(name);
                float[] w = ours.readFloats(name);
                float[] update64 = f.readFloats("update64." + c.folder() + "." + name); // torch float64 final minus initial
                double update = 0;
                double off = 0;
                for (int i = 0; i < w.length; i++) {
                    update += sq(update64[i]);
                    off += sq((double) w[i] - w0[i] - update64[i]);
                }
                double oursRel = Math.sqrt(off / update);
                double torchRel = torch32.get(c.folder() + "/" + name).asDouble() / Math.sqrt(update);
                double ratio = oursRel / Math.max(torchRel, 1e-6);
                if (ratio > worstRatio) {
                    worstRatio = ratio;
                    worstName = String.format("%s/%s: ours %.2e, torch float32 %.2e of the update", c.folder(), name, oursRel, torchRel);
                }
            }
        }
        System.out.printf("final weights: worst ratio to torch's own float32 distance %.2f (%s)%n", worstRatio, worstName);
        assertTrue(worstLoss <= 1e-4, "per-step loss " + worstLoss + " from torch's float64 loop");
        assertTrue(worstNorm <= 1e-3, "per-step grad_norm " + worstNorm + " from torch's float64 loop");
        assertTrue(worstRatio <= SLACK, "final weights: " + worstName);
    }

    private static void deleteTree(Path dir) throws java.io.IOException {
        if (!Files.exists(dir)) {
            return;
        }
        try (java.util.stream.Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.delete(p);
            }
        }
    }

    private static double sq(double d) {
        return d * d;
    }

    static Path referenceFile() throws Exception {
        try (InputStream in = TorchReferenceTrainingTest.class.getResourceAsStream(REFERENCE)) {
            assertTrue(in != null, "no recorded reference " + REFERENCE + " (src/test/resources/reference/README.md says how to record it)");
            Path p = tmp.resolve("reference.safetensors");
            Files.copy(in, p);
            return p;
        }
    }
}
