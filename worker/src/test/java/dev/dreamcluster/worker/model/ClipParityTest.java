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

    @BeforeAll
    static void writeModel() {
        DiffusersFolder.writeRandom(tmp.resolve("tiny"), Presets.TINY, 1, DType.F32);
        folder = DiffusersFolder.read(tmp.resolve("tiny"));
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
        ByteBuffer idBytes = resource("clip_ids.bin");
        long[] ids = new long[idBytes.remaining() / 8];
        idBytes.asLongBuffer().get(ids);
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                ModelWeights te = ModelWeights.load(m, folder, Component.TEXT_ENCODER, Device.cpu(), n -> false)) {
            NDArray input = m.create(ids, new Shape(2, 77));
            ClipTextModel clip = new ClipTextModel(folder.textEncoder(), te);
            assertClose(floats("clip_last.bin"), clip.forward(input, 1).toFloatArray(), "last_hidden_state");
            assertClose(floats("clip_skip2.bin"), clip.forward(input, 2).toFloatArray(), "clip_skip 2");
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
        ClipTokenizer tok = ClipTokenizer.load(folder.dir().resolve("tokenizer"));
        ByteBuffer b = resource("tok.json");
        JsonNode cases = Json.MAPPER.readTree(new String(b.array(), java.nio.charset.StandardCharsets.UTF_8));
        cases.fields().forEachRemaining(e -> assertArrayEquals(Json.MAPPER.convertValue(e.getValue(), int[].class),
                tok.encode(e.getKey()).inputIds(), e.getKey()));
    }
}
