package dev.dreamcluster.worker.sample;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dreamcluster.config.CliFlags;
import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.config.ConfigResolver;
import dev.dreamcluster.config.ResolvedTrainingConfig;
import dev.dreamcluster.diffusion.InferenceSampler;
import dev.dreamcluster.freeze.Component;
import dev.dreamcluster.model.DiffusersFolder;
import dev.dreamcluster.model.ParamSpec;
import dev.dreamcluster.model.TensorSource;
import dev.dreamcluster.safetensors.SafetensorsFile;
import dev.dreamcluster.config.TrainConfig;
import dev.dreamcluster.worker.train.Trainer;
import dev.dreamcluster.worker.train.LocalProgress;
import dev.dreamcluster.worker.train.TrainLoop;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.zip.CRC32C;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Sample images, TensorBoard events and the single-file final model of a tiny run (64 px, few steps). */
class SamplingTest {
    @TempDir
    static Path tmp;

    @BeforeAll
    static void inputs() throws IOException {
        dev.dreamcluster.worker.fixture.TinyRun.writeInputs(tmp, 8);
        Files.writeString(tmp.resolve("optimizer.json"), "{\"base\": {\"optimizer\": \"adamw\", \"lr\": 1e-3}}");
    }

    static Path trainJson(String name, String extra) throws IOException {
        Path f = tmp.resolve(name + ".json");
        Files.writeString(f, "{\"data_root\": \"data\", \"resume_ckpt\": \"model\", \"optimizer_config\": \"optimizer.json\","
                + " \"resolution\": 64, \"batch_size\": 2, \"seed\": 3, \"val_every_n_steps\": 0, \"val_count\": 2, \"out\": \"" + name
                + "-out\"" + extra + "}");
        return f;
    }

    static Trainer trainer(Path json) {
        TrainConfig cfg = TrainConfig.load(json, Map.of());
        ResolvedTrainingConfig opt = ConfigResolver.load(json, CliFlags.NONE, 4);
        return new Trainer(cfg, opt, null, w -> { });
    }

    static int[] pixels(BufferedImage img) {
        return img.getRGB(0, 0, img.getWidth(), img.getHeight(), null, 0, img.getWidth());
    }

    @Test
    void samplesAreSeededAndDeterministic() throws IOException {
        try (Trainer t = trainer(trainJson("det", ""))) {
            SamplingModels m = t.samplingModels();
            BufferedImage a = Sampler.sample(m, "a red circle", "", 5, 64, 64, 7, InferenceSampler.Kind.DDIM, 2);
            BufferedImage b = Sampler.sample(m, "a red circle", "", 5, 64, 64, 7, InferenceSampler.Kind.DDIM, 2);
            BufferedImage c = Sampler.sample(m, "a red circle", "", 6, 64, 64, 7, InferenceSampler.Kind.DDIM, 2);
            BufferedImage e = Sampler.sample(m, "a red circle", "square", 5, 128, 64, 4, InferenceSampler.Kind.EULER, 2);
            assertEquals(64, a.getWidth());
            assertArrayEquals(pixels(a), pixels(b), "same seed, same image");
            assertFalse(java.util.Arrays.equals(pixels(a), pixels(c)), "another seed, another image");
            assertEquals(128, e.getWidth());
            assertEquals(64, e.getHeight());
            long distinct = java.util.Arrays.stream(pixels(e)).distinct().count();
            assertTrue(distinct > 16, "a decoded image, not a constant: " + distinct + " colours");
        }
    }

    @Test
    void aRunWritesSamplesTensorBoardAndASingleFileThatLoadsBack() throws Exception {
        Files.writeString(tmp.resolve("prompts.json"), "{\"cfgs\": [7, 4, 1.01], \"num_inference_steps\": 2, \"samples\": ["
                + "{\"prompt\": \"a red circle on a blue background\"}, {\"prompt\": \"a green square\", \"negative_prompt\": \"red\"}]}");
        Path json = trainJson("run", ", \"max_steps\": 4, \"sample_prompts\": \"prompts.json\", \"sample_steps\": 2,"
                + " \"logdir\": \"logs\", \"save_single_file\": true, \"save_full_precision\": true, \"project_name\": \"t\"");
        TrainConfig cfg = TrainConfig.load(json, Map.of());
        ResolvedTrainingConfig opt = ConfigResolver.load(json, CliFlags.NONE, 4);
        try (LocalProgress progress = new LocalProgress(new dev.dreamcluster.io.MetricsLog(cfg.out()),
                new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8), cfg.logStep())) {
            new TrainLoop(new dev.dreamcluster.config.RunConfig(cfg, opt), null, null, progress, w -> { }).run();
        }

        Path samples = cfg.out().resolve("samples");
        List<String> files;
        try (var list = Files.list(samples)) {
            files = list.map(p -> p.getFileName().toString()).sorted().toList();
        }
        assertEquals(List.of("gs00002-000-a red circle on a blue background.png", "gs00002-000-a red circle on a blue background.txt",
                "gs00002-001-a green square.png", "gs00002-001-a green square.txt", "gs00004-000-a red circle on a blue background.png",
                "gs00004-000-a red circle on a blue background.txt", "gs00004-001-a green square.png", "gs00004-001-a green square.txt"),
                files);
        BufferedImage sheet = ImageIO.read(samples.resolve("gs00004-001-a green square.png").toFile());
        assertEquals(64 * 3, sheet.getWidth(), "one 64 px panel per cfg (7, 4, 1.01)");
        assertEquals(64, sheet.getHeight());
        assertTrue(Files.readString(samples.resolve("gs00004-001-a green square.txt")).contains("negative prompt: red\n seed: 3"));

        // TensorBoard: CRC-checked records, a file_version first, scalars per step, one image per sample
        Path runDir;
        try (var list = Files.list(tmp.resolve("logs"))) {
            runDir = list.findFirst().orElseThrow();
        }
        assertTrue(runDir.getFileName().toString().startsWith("t-"));
        Path events;
        try (var list = Files.list(runDir)) {
            events = list.findFirst().orElseThrow();
        }
        List<byte[]> recs = records(events);
        assertTrue(new String(recs.get(0), StandardCharsets.ISO_8859_1).contains("brain.Event:2"));
        int images = 0;
        int losses = 0;
        for (byte[] r : recs) {
            String s = new String(r, StandardCharsets.ISO_8859_1);
            images += s.contains("\u0089PNG") ? 1 : 0;
            losses += s.contains("loss/step") ? 1 : 0;
        }
        assertEquals(4, images);
        assertEquals(4, losses);

        // final.safetensors (LDM layout) holds the same tensors as final/ (both fp32)
        Path single = cfg.out().resolve("final.safetensors");
        DiffusersFolder layout = DiffusersFolder.read(single);
        assertEquals(cfg.out().resolve("final").toAbsolutePath(), layout.dir(), "tokenizer from the diffusers folder beside it");
        TensorSource src = TensorSource.open(single, layout);
        for (Component c : Component.values()) {
            SafetensorsFile diffusers = SafetensorsFile.open(DiffusersFolder.weightsFile(cfg.out().resolve("final"), c));
            for (ParamSpec p : layout.manifest(c)) {
                assertArrayEquals(diffusers.readFloats(p.name()), src.read(c, p), c.folder() + "/" + p.name());
            }
        }
        assertTrue(SafetensorsFile.open(single).tensors().containsKey("model.diffusion_model.input_blocks.1.1.proj_in.weight"));

        // and it is a resume_ckpt
        Path again = tmp.resolve("again.json");
        Files.writeString(again, Files.readString(trainJson("again", ", \"max_steps\": 1"))
                .replace("\"resume_ckpt\": \"model\"", "\"resume_ckpt\": \"run-out/final.safetensors\""));
        try (Trainer t = trainer(again)) {
            assertTrue(Double.isFinite(t.trainStep().loss()));
        }
    }

    @Test
    void sampleSizesTheModelCannotDrawAreRefused() throws IOException {
        Files.writeString(tmp.resolve("odd.json"), "{\"samples\": [{\"prompt\": \"x\", \"size\": [60, 64]}]}");
        Path json = trainJson("odd-run", ", \"sample_prompts\": \"odd.json\"");
        try (Trainer t = trainer(json)) {
            ConfigError e = assertThrows(ConfigError.class, () -> RunOutputs.open(TrainConfig.load(json, Map.of()), null, t, w -> { }));
            assertTrue(e.getMessage().contains("[60, 64] is not allowed (multiples of 8 for this model)"), e.getMessage());
        }
    }

    /** TFRecords of an event file, each length and data CRC32C (masked) checked. */
    static List<byte[]> records(Path file) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        List<byte[]> out = new ArrayList<>();
        while (b.hasRemaining()) {
            byte[] len = new byte[8];
            b.get(len);
            assertEquals(masked(len), b.getInt());
            byte[] data = new byte[Math.toIntExact(ByteBuffer.wrap(len).order(ByteOrder.LITTLE_ENDIAN).getLong())];
            b.get(data);
            assertEquals(masked(data), b.getInt());
            out.add(data);
        }
        return out;
    }

    static int masked(byte[] d) {
        CRC32C c = new CRC32C();
        c.update(d);
        int v = (int) c.getValue();
        return ((v >>> 15) | (v << 17)) + 0xa282ead8;
    }

    @Test
    void cleanFilenameKeepsLettersDigitsAndSpaces() {
        assertEquals("a cat 2", RunOutputs.cleanFilename("a cat, 2!  "));
        assertNotEquals("", RunOutputs.cleanFilename("é"));
    }
}
