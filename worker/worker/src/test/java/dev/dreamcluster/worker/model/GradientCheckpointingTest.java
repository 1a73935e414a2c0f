package dev.dreamcluster.worker.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import dev.dreamcluster.freeze.Component;
import dev.dreamcluster.model.DiffusersFolder;
import dev.dreamcluster.worker.check.StartupCheck;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeSet;
import java.util.function.Predicate;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Gradient checkpointing ({@link Recompute}, {@link Ops#recompute()}) against plain autograd, on the
 * training step's shape: the text encoder (layer 0 frozen, or all of it), its states plus a
 * perturbation, the UNet, an MSE loss, for the tiny preset and the SD2-like model of {@link
 * ReferenceModels}. Compared: every parameter gradient of both models, the gradient of the sample and
 * of the text states (the perturbation is a leaf that records one, so its gradient is the context's),
 * and the loss.
 *
 * <p>Exact and not: the recomputed forward is bit-identical to the stored one (same ops, same shapes,
 * same kernels), so the loss is bit-exact, and so are the gradients the backward reaches before any
 * value has taken three or more gradient contributions across segment boundaries: most of the UNet's
 * output side (conv_out, the up blocks, the mid block; measured 152 of 262 tensors of the tiny preset).
 * Past that point the sums differ in order: plain autograd adds a value's contributions one at a time
 * as they arrive, while a recomputed segment sums the contributions from inside itself first (a block
 * output read by the next resnet's norm and shortcut and by a skip connection; the time embedding read
 * by every resnet; the context read by every cross-attention). And the upstream gradient handed to a
 * recomputed segment is a contiguous tensor where plain autograd passes a view (the slice of a skip
 * connection's concatenation), so a reduction over it (a linear proj_out's bias) may add in another
 * order. Both are float32 reassociation: per tensor {@code ||on - off|| <= max(1e-5 ||off||, 1e-6 ||all
 * gradients||)} (measured up to 1.2e-6 relative), the bound {@link GradientParityTest} allows for a
 * change of thread count. The test prints how many tensors came out bit-exact.
 */
class GradientCheckpointingTest {
    static final double REL = 1e-5;
    static final double FLOOR = 1e-6;
    static final int BATCH = 2;
    static final int LATENT = 16;
    /** Chunks of the tiny preset's 256-query self-attention: 48 rows (6 chunks) at batch 2, 4 heads. */
    static final long SMALL_CHUNKS = 48L * BATCH * 4 * LATENT * LATENT;

    @TempDir
    static Path tmp;
    static final Map<String, DiffusersFolder> FOLDERS = new LinkedHashMap<>();

    @BeforeAll
    static void writeModels() {
        for (String name : ReferenceModels.NAMES) {
            FOLDERS.put(name, DiffusersFolder.read(ReferenceModels.write(name, tmp.resolve(name))));
        }
    }

    /** The gradients of one step: "unet/..." and "te/..." parameters, "input/sample", "input/context"; and the loss. */
    record Result(Map<String, float[]> grads, float loss) {}

    static Result step(DiffusersFolder folder, Ops ops, Map<OpShape.Conv, ConvForm> forms, Predicate<String> teTrainable) {
        return step(folder, ops, forms, teTrainable, true);
    }

    /** {@code checkpointText} false: the text encoder runs plainly (its graph kept), only the UNet through the session. */
    static Result step(DiffusersFolder folder, Ops ops, Map<OpShape.Conv, ConvForm> forms, Predicate<String> teTrainable,
            boolean checkpointText) {
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                ModelWeights te = ModelWeights.load(m, folder, Component.TEXT_ENCODER, Device.cpu(), teTrainable);
                ModelWeights uw = ModelWeights.load(m, folder, Component.UNET, Device.cpu(), n -> true)) {
            ClipTextModel clip = new ClipTextModel(folder.textEncoder(), te, ops);
            UNetModel unet = new UNetModel(folder.unet(), uw, ops);
            SplittableRandom r = new SplittableRandom(7);
            long[] idv = new long[BATCH * 77];
            for (int i = 0; i < idv.length; i++) {
                idv[i] = r.nextInt(1000);
            }
            NDArray ids = Tensors.of(m, idv, new Shape(BATCH, 77));
            Shape latent = new Shape(BATCH, 4, LATENT, LATENT);
            NDArray sample = gauss(m, r, latent, 1);
            NDArray target = gauss(m, r, latent, 1);
            NDArray perturbation = gauss(m, r, new Shape(BATCH, 77, folder.textEncoder().hiddenSize()), 0.1);
            sample.setRequiresGradient(true);
            perturbation.setRequiresGradient(true);
            int[] t = {15, 640};
            forms.forEach(ops::choose);
            float loss;
            try (NDScope scope = new NDScope();
                    GradientCollector gc = Engine.getInstance().newGradientCollector();
                    Recompute rc = ops.recompute()) {
                NDArray states = clip.forward(ids, 1, checkpointText ? rc : Recompute.DIRECT).add(perturbation);
                NDArray pred = unet.forward(sample, t, states, rc);
                NDArray l = pred.sub(target).square().mean();
                rc.backward(gc, l);
                loss = l.getFloat();
            }
            Map<String, float[]> g = new LinkedHashMap<>();
            grads(uw, "unet/", g);
            grads(te, "te/", g);
            g.put("input/sample", Tensors.read(sample.getGradient()));
            g.put("input/context", Tensors.read(perturbation.getGradient()));
            return new Result(g, loss);
        }
    }

    static void grads(ModelWeights w, String prefix, Map<String, float[]> out) {
        for (Map.Entry<String, NDArray> e : w.tensors().entrySet()) {
            if (e.getValue().hasGradient()) {
                out.put(prefix + e.getKey(), Tensors.read(e.getValue().getGradient()));
            }
        }
    }

    static NDArray gauss(NDManager m, SplittableRandom r, Shape s, double scale) {
        float[] f = new float[Math.toIntExact(s.size())];
        for (int i = 0; i < f.length; i++) {
            double u;
            double v;
            double q;
            do {
                u = 2 * r.nextDouble() - 1;
                v = 2 * r.nextDouble() - 1;
                q = u * u + v * v;
            } while (q >= 1 || q == 0);
            f[i] = (float) (scale * u * Math.sqrt(-2 * Math.log(q) / q));
        }
        return Tensors.of(m, f, s);
    }

    /** The convolution forms of {@code folder} at the test's shapes, measured once and shared by every run. */
    static Map<OpShape.Conv, ConvForm> forms(DiffusersFolder folder) {
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                ModelWeights te = ModelWeights.load(m, folder, Component.TEXT_ENCODER, Device.cpu(), n -> false);
                ModelWeights uw = ModelWeights.load(m, folder, Component.UNET, Device.cpu(), n -> false)) {
            Ops ops = new Ops();
            ClipTextModel clip = new ClipTextModel(folder.textEncoder(), te, ops);
            UNetModel unet = new UNetModel(folder.unet(), uw, ops);
            NDArray ids = m.zeros(new Shape(BATCH, 77), DataType.INT64);
            NDArray sample = m.zeros(new Shape(BATCH, 4, LATENT, LATENT));
            StartupCheck.run(ops, m, DataType.FLOAT32, () -> unet.forward(sample, new int[BATCH], clip.forward(ids, 1)));
            return ops.convForms();
        }
    }

    /** Asserts {@code on} within the bound of {@code off}; returns a summary line. */
    static String compare(String what, Result off, Result on) {
        assertEquals(new TreeSet<>(off.grads().keySet()), new TreeSet<>(on.grads().keySet()), what + ": tensors with a gradient");
        assertEquals(off.loss(), on.loss(), 0f, what + ": the loss (the stored forward is the plain forward)");
        double total = 0;
        for (float[] g : off.grads().values()) {
            total += GradientParityTest.sumSq(g, null);
        }
        double floor = FLOOR * Math.sqrt(total);
        int exact = 0;
        double worst = 0;
        String worstName = "";
        List<String> bad = new ArrayList<>();
        for (Map.Entry<String, float[]> e : off.grads().entrySet()) {
            String name = e.getKey();
            float[] a = e.getValue();
            float[] b = on.grads().get(name);
            double ref = Math.sqrt(GradientParityTest.sumSq(a, null));
            double diff = Math.sqrt(GradientParityTest.sumSq(b, a));
            if (diff == 0) {
                exact++;
            }
            if (ref > floor && diff / ref > worst) {
                worst = diff / ref;
                worstName = name;
            }
            if (!(diff <= Math.max(REL * ref, floor))) {
                bad.add(String.format("%s: ||on - off|| %.3e, ||off|| %.3e", name, diff, ref));
            }
        }
        assertTrue(bad.isEmpty(), what + ": " + bad.size() + " tensors out of bounds: " + bad);
        return String.format("%s: %d of %d gradients bit-exact, worst relative L2 %.2e (%s); context gradient %.2e, sample gradient"
                + " %.2e", what, exact, off.grads().size(), worst, worstName, rel(on, off, "input/context"), rel(on, off, "input/sample"));
    }

    static double rel(Result on, Result off, String name) {
        float[] a = off.grads().get(name);
        return Math.sqrt(GradientParityTest.sumSq(on.grads().get(name), a) / GradientParityTest.sumSq(a, null));
    }

    @Test
    void checkpointedGradientsShouldEqualPlainOnes() {
        for (Map.Entry<String, DiffusersFolder> f : FOLDERS.entrySet()) {
            DiffusersFolder folder = f.getValue();
            Map<OpShape.Conv, ConvForm> forms = forms(folder);
            Predicate<String> te = n -> !n.startsWith("text_model.encoder.layers.0.");
            Result plain = step(folder, new Ops(new Ops.Memory(false, 0, false)), forms, te);
            assertFalse(plain.grads().containsKey("te/text_model.encoder.layers.0.mlp.fc1.weight"), "frozen text layer");
            System.out.println(compare(f.getKey() + " checkpointing per block vs off",
                    plain, step(folder, new Ops(new Ops.Memory(true, 0, false)), forms, te)));
            System.out.println(compare(f.getKey() + " checkpointing, transformer parts kept vs off",
                    plain, step(folder, new Ops(new Ops.Memory(true, 0, true)), forms, te)));
            System.out.println(compare(f.getKey() + " checkpointing the UNet only (text encoder's graph kept) vs off",
                    plain, step(folder, new Ops(new Ops.Memory(true, 0, true)), forms, te, false)));

            Result chunked = step(folder, new Ops(new Ops.Memory(false, SMALL_CHUNKS, false)), forms, te);
            System.out.println(compare(f.getKey() + " chunked attention, checkpointing per block vs off",
                    chunked, step(folder, new Ops(new Ops.Memory(true, SMALL_CHUNKS, false)), forms, te)));
            System.out.println(compare(f.getKey() + " chunked attention, checkpointing with chunks recomputed one at a time vs off",
                    chunked, step(folder, new Ops(new Ops.Memory(true, SMALL_CHUNKS, true)), forms, te)));
        }
    }

    /**
     * The session frees what it stored as backward goes (nothing is left recorded), and a step leaves
     * no NDArray behind on the manager: two steps end with the same number of managed arrays.
     */
    @Test
    void aCheckpointedStepShouldLeaveNothingBehind() {
        DiffusersFolder folder = FOLDERS.get(ReferenceModels.TINY);
        Map<OpShape.Conv, ConvForm> forms = forms(folder);
        Ops ops = new Ops(new Ops.Memory(true, SMALL_CHUNKS, true));
        forms.forEach(ops::choose);
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                ModelWeights te = ModelWeights.load(m, folder, Component.TEXT_ENCODER, Device.cpu(), n -> true);
                ModelWeights uw = ModelWeights.load(m, folder, Component.UNET, Device.cpu(), n -> true)) {
            ClipTextModel clip = new ClipTextModel(folder.textEncoder(), te, ops);
            UNetModel unet = new UNetModel(folder.unet(), uw, ops);
            SplittableRandom r = new SplittableRandom(9);
            NDArray ids = m.zeros(new Shape(BATCH, 77), DataType.INT64);
            NDArray sample = gauss(m, r, new Shape(BATCH, 4, LATENT, LATENT), 1);
            int[] t = {3, 300};
            List<Integer> arrays = new ArrayList<>();
            for (int step = 0; step < 3; step++) {
                try (NDScope scope = new NDScope();
                        GradientCollector gc = Engine.getInstance().newGradientCollector();
                        Recompute rc = ops.recompute()) {
                    NDArray pred = unet.forward(sample, t, clip.forward(ids, 1, rc), rc);
                    assertTrue(rc.recorded() > 0, "the forward recorded its segments");
                    rc.backward(gc, pred.square().mean());
                    assertEquals(0, rc.recorded(), "backward released every stored segment");
                }
                arrays.add(m.getManagedArrays().size());
            }
            assertEquals(arrays.get(1), arrays.get(2), "managed arrays after each step " + arrays);
        }
    }

    /** train_text_encoder off: the states carry no graph (the frozen text encoder is not recomputed); the rest as with it trained. */
    @Test
    void aFrozenTextEncoderShouldGiveTheSameGradients() {
        DiffusersFolder folder = FOLDERS.get(ReferenceModels.TINY);
        Map<OpShape.Conv, ConvForm> forms = forms(folder);
        Result plain = step(folder, new Ops(new Ops.Memory(false, 0, false)), forms, n -> false);
        Result on = step(folder, new Ops(Ops.Memory.of(true)), forms, n -> false);
        assertTrue(plain.grads().keySet().stream().noneMatch(k -> k.startsWith("te/")));
        System.out.println(compare("tiny, text encoder frozen, checkpointing vs off", plain, on));
    }
}
