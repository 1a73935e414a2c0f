package dev.dreamcluster.worker.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.GradientCollector;
import com.fasterxml.jackson.databind.JsonNode;
import dev.dreamcluster.config.Json;
import dev.dreamcluster.freeze.Component;
import dev.dreamcluster.model.DiffusersFolder;
import dev.dreamcluster.worker.check.StartupCheck;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.stream.Collectors;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Every parameter gradient of the UNet and the CLIP text encoder (last_hidden_state and clip_skip 2)
 * against diffusers v0.27.2 / transformers v4.38.2 computed in float64, for the tiny preset and an
 * SD2-like model ({@link ReferenceModels}). The references were recorded by
 * src/test/python/record_gradients.py (src/test/resources/reference/README.md, "Parameter gradients");
 * ours are float32 through {@link Ops} prepared by the {@link StartupCheck}, as training computes them.
 *
 * <p>Per tensor: {@code ||ours - ref||_2 <= max(1e-4 ||ref||_2, 1e-6 ||all reference gradients||_2)}.
 * A gradient that goes through a wrong convolution backward (the libtorch defect {@link ConvForm}
 * works around) is off by tens of percent, so it fails this by orders of magnitude.
 */
class GradientParityTest {
    static final double REL = 1e-4;
    static final double FLOOR = 1e-6;
    static final double THREAD_REL = 1e-5;
    static final String RESOURCES = "/reference/gradients/";

    @TempDir
    static Path tmp;
    static final Map<String, DiffusersFolder> FOLDERS = new LinkedHashMap<>();

    @BeforeAll
    static void writeModels() {
        for (String name : ReferenceModels.NAMES) {
            FOLDERS.put(name, DiffusersFolder.read(ReferenceModels.write(name, tmp.resolve(name))));
        }
    }

    // ---- the reference files

    /** A safetensors file read whole: header entries, metadata and the data section. */
    record Reference(String file, Map<String, String> meta, Map<String, JsonNode> entries, ByteBuffer data) {
        static Reference load(String file) {
            byte[] bytes;
            try (InputStream in = GradientParityTest.class.getResourceAsStream(RESOURCES + file)) {
                if (in == null) {
                    throw new AssertionError("missing test resource " + RESOURCES + file
                            + ": record it as src/test/resources/reference/README.md (\"Parameter gradients\") says");
                }
                bytes = in.readAllBytes();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
            int n = Math.toIntExact(b.getLong(0));
            JsonNode header;
            try {
                header = Json.MAPPER.readTree(new String(bytes, 8, n, StandardCharsets.UTF_8));
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            Map<String, String> meta = new LinkedHashMap<>();
            Map<String, JsonNode> entries = new LinkedHashMap<>();
            header.fields().forEachRemaining(e -> {
                if (e.getKey().equals("__metadata__")) {
                    e.getValue().fields().forEachRemaining(m -> meta.put(m.getKey(), m.getValue().asText()));
                } else {
                    entries.put(e.getKey(), e.getValue());
                }
            });
            ByteBuffer data = b.position(8 + n).slice().order(ByteOrder.LITTLE_ENDIAN);
            return new Reference(file, meta, entries, data);
        }

        long[] shape(String name) {
            return Json.MAPPER.convertValue(entry(name).get("shape"), long[].class);
        }

        private JsonNode entry(String name) {
            JsonNode e = entries.get(name);
            if (e == null) {
                throw new AssertionError(file + " has no tensor " + name);
            }
            return e;
        }

        private ByteBuffer bytes(String name, String dtype) {
            JsonNode e = entry(name);
            assertEquals(dtype, e.get("dtype").asText(), file + ": dtype of " + name);
            int begin = e.get("data_offsets").get(0).asInt();
            int end = e.get("data_offsets").get(1).asInt();
            return data.duplicate().position(begin).limit(end).slice().order(ByteOrder.LITTLE_ENDIAN);
        }

        float[] floats(String name) {
            ByteBuffer b = bytes(name, "F32");
            float[] f = new float[b.remaining() / 4];
            b.asFloatBuffer().get(f);
            return f;
        }

        long[] longs(String name) {
            ByteBuffer b = bytes(name, "I64");
            long[] l = new long[b.remaining() / 8];
            b.asLongBuffer().get(l);
            return l;
        }

        NDArray array(NDManager m, String name) {
            return m.create(floats(name), new Shape(shape(name)));
        }

        /** Gradient tensors: names with {@code prefix} (prefix removed), inputs excluded. */
        Map<String, float[]> gradients(String prefix) {
            Map<String, float[]> g = new LinkedHashMap<>();
            for (String k : entries.keySet()) {
                boolean other = k.startsWith("input.") || (prefix.isEmpty() ? k.contains("/") : !k.startsWith(prefix));
                if (!other) {
                    g.put(k.substring(prefix.length()), floats(k));
                }
            }
            return g;
        }

        /**
         * The weights and config these gradients were recorded from must be the bytes ReferenceModels
         * writes now; anything else makes the comparison meaningless.
         */
        void checkRecordedFrom(DiffusersFolder folder, Component c) {
            Path weights = DiffusersFolder.weightsFile(folder.dir(), c);
            Path config = folder.dir().resolve(c.folder()).resolve("config.json");
            String what = "";
            if (!sha256(weights).equals(meta.get("weights_sha256"))) {
                what = weights.getFileName() + " sha256 " + sha256(weights) + ", recorded from " + meta.get("weights_sha256");
            } else if (!sha256(config).equals(meta.get("config_sha256"))) {
                what = "config.json sha256 " + sha256(config) + ", recorded from " + meta.get("config_sha256");
            }
            if (!what.isEmpty()) {
                fail(file + " was recorded from another " + c.folder() + " than ReferenceModels writes now (" + what
                        + "). The reference must be re-recorded: write the folders with ReferenceModels and run"
                        + " src/test/python/record_gradients.py on them, as src/test/resources/reference/README.md"
                        + " (\"Parameter gradients\") says.");
            }
        }
    }

    static String sha256(Path f) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(f)));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    // ---- our gradients

    static Map<String, float[]> gradients(ModelWeights w) {
        Map<String, float[]> out = new LinkedHashMap<>();
        for (Map.Entry<String, NDArray> e : w.tensors().entrySet()) {
            try (NDArray g = e.getValue().getGradient()) {
                out.put(e.getKey(), g.toFloatArray());
            }
        }
        return out;
    }

    /** loss = mean((unet(x, t, c) - target)^2), in float32, through checked convolution forms. */
    static Map<String, float[]> unetGradients(DiffusersFolder folder, Reference ref) {
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                ModelWeights w = ModelWeights.load(m, folder, Component.UNET, Device.cpu(), n -> true)) {
            NDArray x = ref.array(m, "input.sample");
            NDArray c = ref.array(m, "input.encoder_hidden_states");
            NDArray target = ref.array(m, "input.target");
            int[] t = Arrays.stream(ref.longs("input.timesteps")).mapToInt(Math::toIntExact).toArray();
            Ops ops = new Ops();
            UNetModel unet = new UNetModel(folder.unet(), w, ops);
            StartupCheck.run(ops, m, DataType.FLOAT32, () -> unet.forward(x, t, c));
            System.out.printf("%s unet at %d threads: convolution forms %s%n", folder.dir().getFileName(), JniUtils.getNumThreads(),
                    new TreeMap<>(ops.convForms().values().stream().collect(Collectors.groupingBy(f -> f, Collectors.counting()))));
            try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                gc.backward(unet.forward(x, t, c).sub(target).square().mean());
            }
            return gradients(w);
        }
    }

    /** sum(clip(ids, clipSkip) * r), with r = R (clip_skip 1) or R2 (clip_skip 2). */
    static Map<String, float[]> textEncoderGradients(DiffusersFolder folder, Reference ref, int clipSkip) {
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                ModelWeights w = ModelWeights.load(m, folder, Component.TEXT_ENCODER, Device.cpu(), n -> true)) {
            NDArray ids = m.create(ref.longs("input.input_ids"), new Shape(ref.shape("input.input_ids")));
            NDArray r = ref.array(m, clipSkip == 1 ? "input.R" : "input.R2");
            Ops ops = new Ops();
            ClipTextModel clip = new ClipTextModel(folder.textEncoder(), w, ops);
            StartupCheck.run(ops, m, DataType.FLOAT32, () -> clip.forward(ids, clipSkip));
            try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                gc.backward(clip.forward(ids, clipSkip).mul(r).sum());
            }
            return gradients(w);
        }
    }

    // ---- comparison

    /** One tensor's error: ||ours - ref||, ||ref||, and the bound it must stay under. */
    record Err(String name, double diff, double ref, double bound) {
        double relative() {
            return ref > 0 ? diff / ref : (diff > 0 ? Double.POSITIVE_INFINITY : 0);
        }

        double used() {
            return bound > 0 ? diff / bound : (diff > 0 ? Double.POSITIVE_INFINITY : 0);
        }

        @Override
        public String toString() {
            return String.format("%s: ||ours - ref|| %.3e, ||ref|| %.3e (relative %.2e, bound %.2e)", name, diff, ref, relative(),
                    bound);
        }
    }

    /** The per-tensor errors, worst (largest share of its bound) first. */
    static List<Err> compare(String what, Map<String, float[]> ours, Map<String, float[]> ref, double rel) {
        assertEquals(new TreeSet<>(ref.keySet()), new TreeSet<>(ours.keySet()), what + ": parameter names");
        double total = 0;
        for (float[] r : ref.values()) {
            total += sumSq(r, null);
        }
        double floor = FLOOR * Math.sqrt(total);
        List<Err> errs = new ArrayList<>();
        for (Map.Entry<String, float[]> e : ref.entrySet()) {
            float[] r = e.getValue();
            float[] o = ours.get(e.getKey());
            assertEquals(r.length, o.length, what + ": size of " + e.getKey());
            double refNorm = Math.sqrt(sumSq(r, null));
            double diff = Math.sqrt(sumSq(o, r));
            errs.add(new Err(e.getKey(), diff, refNorm, Math.max(rel * refNorm, floor)));
        }
        errs.sort(Comparator.comparingDouble(Err::used).reversed());
        return errs;
    }

    static double sumSq(float[] a, float[] minus) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            double d = minus == null ? a[i] : (double) a[i] - minus[i];
            s += d * d;
        }
        return s;
    }

    /** Prints the worst errors of {@code what} and returns a failure line, or null when every tensor is in bounds. */
    static String report(String what, List<Err> errs) {
        double refAll = Math.sqrt(errs.stream().mapToDouble(e -> e.ref() * e.ref()).sum());
        double diffAll = Math.sqrt(errs.stream().mapToDouble(e -> e.diff() * e.diff()).sum());
        // tensors whose exact gradient is 0 (CLIP's k_proj.bias: softmax ignores a per-row constant) have
        // a reference of rounding noise; their relative error means nothing, the floor bounds them
        List<Err> nonZero = errs.stream().filter(e -> e.ref() > FLOOR * refAll).toList();
        Err worstRel = nonZero.stream().max(Comparator.comparingDouble(Err::relative)).orElseThrow();
        Err worstUsed = errs.get(0);
        System.out.printf("gradient parity %s: %d tensors, worst relative error %.2e (%s; %d tensors with a zero gradient"
                + " left out), worst share of its bound %.3f (%s), all tensors together %.2e%n", what, errs.size(),
                worstRel.relative(), worstRel.name(), errs.size() - nonZero.size(), worstUsed.used(), worstUsed.name(),
                diffAll / refAll);
        List<Err> bad = errs.stream().filter(e -> !(e.diff() <= e.bound())).toList();
        if (bad.isEmpty()) {
            return null;
        }
        StringBuilder sb = new StringBuilder(what + ": " + bad.size() + " of " + errs.size() + " tensors out of bounds; worst:");
        bad.stream().limit(8).forEach(e -> sb.append("\n    ").append(e));
        return sb.toString();
    }

    static void assertAllInBounds(List<String> failures) {
        List<String> f = failures.stream().filter(Objects::nonNull).toList();
        assertTrue(f.isEmpty(), String.join("\n", f));
    }

    // ---- the tests

    @Test
    void unetGradientsShouldMatchDiffusersInFloat64() {
        List<String> failures = new ArrayList<>();
        for (String name : ReferenceModels.NAMES) {
            Reference ref = Reference.load(name + "_unet.safetensors");
            ref.checkRecordedFrom(FOLDERS.get(name), Component.UNET);
            Map<String, float[]> ours = unetGradients(FOLDERS.get(name), ref);
            failures.add(report(name + " unet", compare(name + " unet", ours, ref.gradients(""), REL)));
        }
        assertAllInBounds(failures);
    }

    @Test
    void textEncoderGradientsShouldMatchTransformersInFloat64() {
        List<String> failures = new ArrayList<>();
        for (String name : ReferenceModels.NAMES) {
            Reference ref = Reference.load(name + "_text_encoder.safetensors");
            ref.checkRecordedFrom(FOLDERS.get(name), Component.TEXT_ENCODER);
            for (int clipSkip : new int[] {1, 2}) {
                String what = name + " text_encoder clip_skip " + clipSkip;
                Map<String, float[]> ours = textEncoderGradients(FOLDERS.get(name), ref, clipSkip);
                failures.add(report(what, compare(what, ours, ref.gradients(clipSkip == 1 ? "" : "clip_skip_2/"), REL)));
            }
        }
        assertAllInBounds(failures);
    }

    /**
     * libtorch's conv2d defect depends on the intra-op thread count, so the forms are re-checked at
     * each count and the gradients must not depend on it (beyond float32 summation order).
     */
    @Test
    void unetGradientsShouldNotDependOnTheThreadCount() {
        String name = ReferenceModels.TINY;
        Reference ref = Reference.load(name + "_unet.safetensors");
        ref.checkRecordedFrom(FOLDERS.get(name), Component.UNET);
        Engine.getInstance(); // loads libtorch: JniUtils is usable only after
        int before = JniUtils.getNumThreads();
        Map<Integer, Map<String, float[]>> byThreads = new LinkedHashMap<>();
        try {
            for (int n : new int[] {1, 2, 4}) {
                JniUtils.setNumThreads(n);
                byThreads.put(n, unetGradients(FOLDERS.get(name), ref));
            }
        } finally {
            JniUtils.setNumThreads(before);
        }
        List<String> failures = new ArrayList<>();
        for (int n : new int[] {2, 4}) {
            String what = name + " unet at " + n + " threads vs 1";
            failures.add(report(what, compare(what, byThreads.get(n), byThreads.get(1), THREAD_REL)));
        }
        assertAllInBounds(failures);
    }
}
