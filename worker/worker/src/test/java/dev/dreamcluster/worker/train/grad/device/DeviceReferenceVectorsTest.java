package dev.dreamcluster.worker.train.grad.device;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import dev.dreamcluster.config.Json;
import dev.dreamcluster.config.OptimizerName;
import dev.dreamcluster.optim.OptimizerHyper;
import dev.dreamcluster.optim.TensorSlice;
import dev.dreamcluster.optim.TensorState;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/**
 * Every optimizer case of shared/reference/optim-vectors (an independent float32 reference of the
 * spec, docs: shared/spec/optimizers.md section 7) reproduced on the device bit for bit: parameters
 * after each of the K steps, the state after step 1 and at the end.
 */
class DeviceReferenceVectorsTest {
    static NDManager root;

    @BeforeAll
    static void engine() {
        Engine.getEngine("PyTorch");
        root = NDManager.newBaseManager(Device.cpu());
    }

    @AfterAll
    static void close() {
        root.close();
    }

    static Path dir() {
        String p = System.getProperty("dreamcluster.shared");
        Path shared = p != null ? Path.of(p) : Path.of("..", "..", "..", "shared");
        return shared.resolve("reference").resolve("optim-vectors").toAbsolutePath().normalize();
    }

    @TestFactory
    Stream<DynamicTest> shouldReproduceEveryOptimizerCaseBitExactly() {
        Path dir = dir();
        assumeTrue(Files.isRegularFile(dir.resolve("manifest.json")), "no reference vectors at " + dir);
        JsonNode manifest = Json.readObject(dir.resolve("manifest.json"), "manifest.json");
        List<DynamicTest> tests = new ArrayList<>();
        for (JsonNode c : manifest.get("cases")) {
            tests.add(DynamicTest.dynamicTest(c.get("name").asText(), () -> run(dir, manifest, c)));
        }
        return tests.stream();
    }

    private static void run(Path dir, JsonNode manifest, JsonNode c) {
        JsonNode in = manifest.get("inputs").get(c.get("inputs").asText());
        int n = c.get("n").asInt();
        int k = c.get("K").asInt();
        float[] p0 = f32(dir, in.get("params0").asText());
        float[] grads = f32(dir, in.get("grads").asText());
        float[] expected = f32(dir, c.get("expected_params").asText());
        JsonNode h = c.get("hyperparams");
        OptimizerName name = OptimizerName.parse(c.get("optimizer").asText(), "manifest");
        double lr = h.get("lr").asDouble();
        OptimizerHyper hyper = new OptimizerHyper(name, h.get("betas").get(0).asDouble(), h.get("betas").get(1).asDouble(),
                h.has("eps") ? h.get("eps").asDouble() : 0, h.get("weight_decay").asDouble());
        String what = c.get("name").asText();
        try (NDManager m = root.newSubManager();
                DeviceOptimizer opt = DeviceOptimizer.create(hyper, List.of(TensorSlice.whole("t", n)), m)) {
            NDArray p = DeviceCopy.upload(m, p0);
            NDArray g = DeviceCopy.zeros(m, n, ai.djl.ndarray.types.DataType.FLOAT32);
            float[] got = new float[n];
            for (int t = 0; t < k; t++) {
                DeviceCopy.upload(grads, t * n, g, 0, n);
                opt.step(p, g, 0, lr);
                DeviceCopy.download(p, 0, got, 0, n);
                Bits.assertFloats(expected, t * n, got, 0, n, what + " params after step " + (t + 1));
                if (t == 0 && c.has("step1_state")) {
                    assertState(dir, c.get("step1_state"), opt.state().tensors().get(0), what + " step 1");
                }
            }
            assertState(dir, c.get("final_state"), opt.state().tensors().get(0), what + " final");
        }
    }

    private static void assertState(Path dir, JsonNode files, TensorState s, String when) {
        Map<String, Object> actual = new java.util.HashMap<>();
        actual.put("exp_avg", s.m);
        actual.put("exp_avg_sq", s.v);
        actual.put("state1_fp32", s.m);
        actual.put("state2_fp32", s.v);
        actual.put("state1", s.c1);
        actual.put("state2", s.c2);
        actual.put("absmax1", s.absmax1);
        actual.put("absmax2", s.absmax2);
        files.fieldNames().forEachRemaining(key -> {
            Object a = actual.get(key);
            String file = files.get(key).asText();
            if (a instanceof byte[] codes) {
                Bits.assertBytes(bytes(dir, file), codes, when + " " + key);
            } else {
                Bits.assertFloats(f32(dir, file), (float[]) a, when + " " + key);
            }
        });
    }

    static float[] f32(Path dir, String file) {
        ByteBuffer b = ByteBuffer.wrap(bytes(dir, file)).order(ByteOrder.LITTLE_ENDIAN);
        float[] out = new float[b.remaining() / 4];
        b.asFloatBuffer().get(out);
        return out;
    }

    static byte[] bytes(Path dir, String file) {
        try {
            return Files.readAllBytes(dir.resolve(file));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
