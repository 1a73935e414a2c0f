package dev.dreamcluster.worker.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import dev.dreamcluster.config.Json;
import dev.dreamcluster.freeze.Component;
import dev.dreamcluster.model.DiffusersFolder;
import dev.dreamcluster.model.Presets;
import dev.dreamcluster.safetensors.DType;
import dev.dreamcluster.tokenizer.ClipTokenizer;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Parity with Hugging Face transformers' CLIPTextModel and CLIPTokenizer on the tiny preset (seed 1):
 * outputs recorded once with torch (see src/test/resources/reference/README.md).
 */
class ClipParityTest {
    @TempDir
    static Path tmp;
    static DiffusersFolder folder;
    /** SD2-style text encoder: exact GELU, and a tokenizer that pads with "!". */
    static DiffusersFolder sd2;

    @BeforeAll
    static void writeModel() {
        DiffusersFolder.writeRandom(tmp.resolve("tiny"), Presets.TINY, 1, DType.F32);
        folder = DiffusersFolder.read(tmp.resolve("tiny"));
        Presets p = Presets.TINY;
        dev.dreamcluster.model.ClipTextConfig te = new dev.dreamcluster.model.ClipTextConfig(1024, 32, 3, 4, 64, 77, "gelu", 1e-5);
        DiffusersFolder.write(tmp.resolve("tiny-sd2"), p.unet, te, p.vae,
                dev.dreamcluster.diffusion.DdpmScheduler.stableDiffusion(dev.dreamcluster.diffusion.DdpmScheduler.Prediction.V_PREDICTION),
                true, DType.F32, DiffusersFolder.randomInit(2, p.unet, te, p.vae), null);
        sd2 = DiffusersFolder.read(tmp.resolve("tiny-sd2"));
    }

    static ByteBuffer resource(String name) throws IOException {
        try (InputStream in = ClipParityTest.class.getResourceAsStream("/reference/" + name)) {
            return ByteBuffer.wrap(in.readAllBytes()).order(ByteOrder.LITTLE_ENDIAN);
        }
    }

    static float[] floats(String name) throws IOException {
        ByteBuffer b = resource(name);
        float[] f = new float[b.remaining() / 4];
        b.asFloatBuffer().get(f);
        return f;
    }

    @Test
    void shouldMatchTransformersHiddenStates() throws IOException {
        checkHiddenStates(folder, "");
        checkHiddenStates(sd2, "sd2_");
    }

    static void checkHiddenStates(DiffusersFolder folder, String prefix) throws IOException {
        ByteBuffer idBytes = resource(prefix + "clip_ids.bin");
        long[] ids = new long[idBytes.remaining() / 8];
        idBytes.asLongBuffer().get(ids);
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                ModelWeights te = ModelWeights.load(m, folder, Component.TEXT_ENCODER, Device.cpu(), n -> false)) {
            NDArray input = m.create(ids, new Shape(2, 77));
            ClipTextModel clip = new ClipTextModel(folder.textEncoder(), te, new Ops());
            assertClose(floats(prefix + "clip_last.bin"), clip.forward(input, 1).toFloatArray(), prefix + "last_hidden_state");
            assertClose(floats(prefix + "clip_skip2.bin"), clip.forward(input, 2).toFloatArray(), prefix + "clip_skip 2");
        }
    }

    static void assertClose(float[] want, float[] got, String what) {
        double max = 0;
        for (int i = 0; i < want.length; i++) {
            max = Math.max(max, Math.abs(want[i] - got[i]));
        }
        assertTrue(max < 2e-5, what + ": max |diff| " + max);
    }

    @Test
    void shouldTokenizeLikeTransformers() throws IOException {
        checkTokens(folder, "tok.json");
        checkTokens(sd2, "sd2_tok.json");
    }

    static void checkTokens(DiffusersFolder folder, String file) throws IOException {
        ClipTokenizer tok = ClipTokenizer.load(folder.dir().resolve("tokenizer"));
        ByteBuffer b = resource(file);
        JsonNode cases = Json.MAPPER.readTree(new String(b.array(), java.nio.charset.StandardCharsets.UTF_8));
        cases.fields().forEachRemaining(e -> assertArrayEquals(Json.MAPPER.convertValue(e.getValue(), int[].class),
                tok.encode(e.getKey()).inputIds(), e.getKey()));
    }
}
