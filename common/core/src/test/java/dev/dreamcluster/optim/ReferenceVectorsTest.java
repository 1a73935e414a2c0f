package dev.dreamcluster.optim;

import static dev.dreamcluster.optim.Bits.assertBitsEqual;
import static dev.dreamcluster.optim.Bits.assertBytesEqual;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import dev.dreamcluster.config.OptimizerName;
import dev.dreamcluster.optim.kernel.AdamWKernel;
import dev.dreamcluster.optim.kernel.BnbScalars;
import dev.dreamcluster.optim.kernel.LionKernel;
import dev.dreamcluster.optim.kernel.QuantMap;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

/** Every case of shared/reference/optim-vectors, reproduced bit for bit (spec section 7, strict). */
class ReferenceVectorsTest {

    @Test
    void shouldComputeQuantMapsEqualToTorchDump() {
        assertBitsEqual(Vectors.f32("qmap_signed.bin"), QuantMap.SIGNED, "signed map");
        assertBitsEqual(Vectors.f32("qmap_unsigned.bin"), QuantMap.UNSIGNED, "unsigned map");
        assertEquals(0f, QuantMap.SIGNED[127]);
        assertEquals(1f, QuantMap.SIGNED[255]);
    }

    @TestFactory
    Stream<DynamicTest> shouldReproduceRoundTrips() {
        List<DynamicTest> tests = new ArrayList<>();
        for (JsonNode rt : Vectors.MANIFEST.get("roundtrip")) {
            tests.add(DynamicTest.dynamicTest(rt.get("name").asText(), () -> {
                boolean signed = rt.get("signed").asBoolean();
                float[] in = Vectors.f32(rt.get("input").asText());
                float[] code = signed ? QuantMap.SIGNED : QuantMap.UNSIGNED;
                int blocks = (in.length + 255) / 256;
                float[] absmax = new float[blocks];
                byte[] codes = new byte[in.length];
                float[] deq = new float[in.length];
                for (int b = 0; b < blocks; b++) {
                    float max = 0;
                    for (int i = b * 256; i < Math.min(in.length, b * 256 + 256); i++) {
                        max = Math.max(max, Math.abs(in[i]));
                    }
                    absmax[b] = max;
                    for (int i = b * 256; i < Math.min(in.length, b * 256 + 256); i++) {
                        int c = signed ? QuantMap.quantizeSigned(in[i], max) : QuantMap.quantizeUnsigned(in[i] / max);
                        codes[i] = (byte) c;
                        deq[i] = code[c] * max;
                    }
                }
                assertBitsEqual(Vectors.f32(rt.get("absmax").asText()), absmax, "absmax");
                assertBytesEqual(Vectors.u8(rt.get("codes").asText()), codes, "codes");
                assertBitsEqual(Vectors.f32(rt.get("dequantized").asText()), deq, "dequantized");
            }));
        }
        return tests.stream();
    }

    @TestFactory
    Stream<DynamicTest> shouldReproduceEveryOptimizerCaseBitExactly() {
        List<DynamicTest> tests = new ArrayList<>();
        for (JsonNode c : Vectors.MANIFEST.get("cases")) {
            tests.add(DynamicTest.dynamicTest(c.get("name").asText(), () -> runCase(c)));
        }
        return tests.stream();
    }

    private static void runCase(JsonNode c) {
        JsonNode in = Vectors.MANIFEST.get("inputs").get(c.get("inputs").asText());
        int n = c.get("n").asInt();
        int k = c.get("K").asInt();
        float[] p = Vectors.f32(in.get("params0").asText());
        float[] grads = Vectors.f32(in.get("grads").asText());
        float[] expected = Vectors.f32(c.get("expected_params").asText());
        JsonNode h = c.get("hyperparams");
        OptimizerName name = OptimizerName.parse(c.get("optimizer").asText(), "manifest");
        double lr = h.get("lr").asDouble();
        double b1 = h.get("betas").get(0).asDouble();
        double b2 = h.get("betas").get(1).asDouble();
        double eps = h.has("eps") ? h.get("eps").asDouble() : 0;
        double wd = h.get("weight_decay").asDouble();
        try (Optimizer opt = Optimizer.create(new OptimizerHyper(name, b1, b2, eps, wd),
                List.of(TensorSlice.whole("t", n)), 1)) {
            float[] g = new float[n];
            for (int t = 0; t < k; t++) {
                System.arraycopy(grads, t * n, g, 0, n);
                assertScalars(c.get("per_step_scalars_f32bits").get(t), name, lr, b1, b2, eps, wd, t + 1);
                opt.step(p, g, lr);
                assertBitsEqual(expected, t * n, p, 0, n, c.get("name").asText() + " params after step " + (t + 1));
                if (t == 0 && c.has("step1_state")) {
                    assertState(c.get("step1_state"), opt.state().tensors().get(0), "step 1");
                }
            }
            assertState(c.get("final_state"), opt.state().tensors().get(0), "final");
        }
    }

    private static void assertState(JsonNode files, TensorState s, String when) {
        Map<String, Object> actual = new LinkedHashMap<>();
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
                assertBytesEqual(Vectors.u8(file), codes, when + " " + key);
            } else {
                assertBitsEqual(Vectors.f32(file), (float[]) a, when + " " + key);
            }
        });
    }

    /** The step's float32 constants against the manifest's bit patterns. */
    private static void assertScalars(JsonNode want, OptimizerName name, double lr, double b1, double b2, double eps,
            double wd, long t) {
        Map<String, Float> got = new LinkedHashMap<>();
        switch (name) {
            case ADAMW -> {
                AdamWKernel.Scalars s = AdamWKernel.Scalars.of(lr, b1, b2, eps, wd, t);
                got.put("wd_factor", s.wdFactor());
                got.put("lerp_weight", s.lerpWeight());
                got.put("beta2", s.beta2());
                got.put("one_minus_beta2", s.oneMinusBeta2());
                got.put("bc2_sqrt", s.bc2Sqrt());
                got.put("neg_step_size", s.negStepSize());
                got.put("eps", s.eps());
            }
            case LION -> {
                LionKernel.Scalars s = LionKernel.Scalars.of(lr, b1, b2, wd);
                got.put("wd_factor", s.wdFactor());
                got.put("beta1", s.beta1());
                got.put("one_minus_beta1", s.oneMinusBeta1());
                got.put("beta2", s.beta2());
                got.put("one_minus_beta2", s.oneMinusBeta2());
                got.put("neg_lr", s.negLr());
            }
            case ADAMW8BIT, LION8BIT -> {
                BnbScalars s = BnbScalars.of(lr, b1, b2, eps, wd, t);
                got.put("correction1", s.correction1());
                got.put("correction2", s.correction2());
                got.put("step_size", s.stepSize());
                got.put("one_minus_beta1", s.oneMinusBeta1());
                got.put("one_minus_beta2", s.oneMinusBeta2());
                got.put("eps_times_correction2", s.epsTimesCorrection2());
                got.put("wd_factor", s.wdFactor());
                got.put("lr", s.lr());
            }
        }
        want.fieldNames().forEachRemaining(key -> {
            if (key.equals("step")) {
                return;
            }
            Float v = got.get(key);
            org.junit.jupiter.api.Assertions.assertNotNull(v, "no scalar " + key);
            assertEquals(Integer.toHexString(Vectors.bits(want.get(key))), Integer.toHexString(Float.floatToRawIntBits(v)),
                    name.key() + " step " + t + " scalar " + key);
        });
    }
}
