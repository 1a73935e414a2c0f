package dev.dreamcluster.worker.train.grad.device;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.BaseNDManager;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.dreamcluster.config.OptimizerName;
import dev.dreamcluster.optim.Optimizer;
import dev.dreamcluster.optim.OptimizerHyper;
import dev.dreamcluster.optim.OptimizerState;
import dev.dreamcluster.optim.TensorSlice;
import dev.dreamcluster.optim.TensorState;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The device optimizers against the Java ones ({@link Optimizer}), bit for bit on DJL's CPU engine:
 * parameters after every step and the whole state (fp32 moments, 8-bit codes, absmax), on a shard with
 * odd lengths, partial blocks, a slice in the middle of a tensor, tensors on both sides of the 4096
 * threshold, gradients spanning 40 decades, zeros, -0, subnormals, huge values and non-finite ones,
 * the shard in the middle of a larger flat buffer (the rest untouched), with the work cut three ways.
 */
class DeviceOptimizerTest {
    static final int STEPS = 6;
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

    /** 26510 elements: 8-bit and fp32-state slices interleaved, several partial blocks. */
    static List<TensorSlice> shard() {
        return List.of(
                new TensorSlice("a", 5000, 0, 5000), // 8-bit: 19 full blocks + 136
                new TensorSlice("b", 300, 0, 300), // under 4096: fp32 state in the 8-bit optimizers
                new TensorSlice("c", 8192, 0, 8192), // 32 full blocks ...
                new TensorSlice("d", 20000, 512, 4096), // ... and the middle of a larger tensor: one run of 48
                new TensorSlice("e", 77, 0, 77),
                new TensorSlice("f", 4133, 0, 4133), // 16 full + 37
                new TensorSlice("g", 10000, 9984, 16), // the tail of a large tensor: one partial block
                new TensorSlice("h", 600, 0, 600),
                new TensorSlice("i", 4096, 0, 4096)); // exactly 4096: 8-bit, 16 blocks
    }

    static OptimizerHyper hyper(OptimizerName name) {
        return switch (name) {
            case ADAMW -> new OptimizerHyper(name, 0.9, 0.999, 1e-8, 0.01);
            case ADAMW8BIT -> new OptimizerHyper(name, 0.9, 0.999, 1e-8, 0.01);
            case LION, LION8BIT -> new OptimizerHyper(name, 0.9, 0.99, 0, 0.1);
        };
    }

    static double lr(OptimizerName name, int t) {
        return (name.isLion() ? 1e-4 : 1e-3) * (1 + 0.1 * t);
    }

    static Stream<Arguments> cases() {
        List<Arguments> out = new ArrayList<>();
        DeviceOptimizer.Tuning[] tunings = {
            DeviceOptimizer.Tuning.DEFAULT, // one chunk per kind of work; 8-bit runs under 64 blocks gathered
            new DeviceOptimizer.Tuning(512, 2, 64), // 2-block chunks, views and gathers mixed, 64-byte copies
            new DeviceOptimizer.Tuning(256 * 7, 1, 1000), // every run viewed, 7-block chunks
        };
        for (OptimizerName name : OptimizerName.values()) {
            for (int k = 0; k < tunings.length; k++) {
                out.add(Arguments.of(name, hyper(name), k, tunings[k]));
            }
        }
        // the other branches: torch's lerp for 1 - beta1 >= 0.5, and no weight decay
        out.add(Arguments.of(OptimizerName.ADAMW, new OptimizerHyper(OptimizerName.ADAMW, 0.3, 0.9, 1e-6, 0.02), 0,
                DeviceOptimizer.Tuning.DEFAULT));
        for (OptimizerName name : OptimizerName.values()) {
            OptimizerHyper h = hyper(name);
            out.add(Arguments.of(name, new OptimizerHyper(name, h.beta1(), h.beta2(), h.eps(), 0), 1,
                    new DeviceOptimizer.Tuning(512, 2, 64)));
        }
        return out.stream();
    }

    /** Step t's gradients: 10 decades per element, edge values in a few lanes, a block of zeros. */
    static float[] grads(int n, int t, SplittableRandom rnd) {
        float[] g = new float[n];
        for (int i = 0; i < n; i++) {
            g[i] = (float) (rnd.nextGaussian() * Math.pow(10, -rnd.nextInt(10)));
        }
        float[] edge = {0f, -0f, 1e-30f, 1e-42f, 1e30f, 3e38f, Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY};
        float e = edge[t % edge.length];
        for (int i = 3 * 256; i < 3 * 256 + 40; i++) { // slice a, block 3
            g[i] = e * (i % 2 == 0 ? 1 : -1);
        }
        for (int i = 5000 + 10; i < 5000 + 20; i++) { // slice b (fp32 state)
            g[i] = edge[(t + i) % edge.length];
        }
        for (int i = 5300 + 5 * 256; i < 5300 + 6 * 256; i++) { // slice c: a block of zeros
            g[i] = 0f;
        }
        int f = 5000 + 300 + 8192 + 4096 + 77; // slice f
        if (t == 2) {
            g[f + 4132] = Float.NaN; // a non-finite lane in a partial block
        }
        if (t == 4) {
            for (int i = f + 4096; i < f + 4133; i++) { // every real lane of a partial block
                g[i] = Float.NaN;
            }
        }
        return g;
    }

    static float[] params(int n, SplittableRandom rnd) {
        float[] p = new float[n];
        for (int i = 0; i < n; i++) {
            p[i] = i % 97 == 0 ? 0f : i % 89 == 0 ? -0f : (float) rnd.nextGaussian();
        }
        return p;
    }

    @ParameterizedTest(name = "{0} {1} tuning {2}")
    @MethodSource("cases")
    void shouldMatchTheJavaOptimizerBitForBit(OptimizerName name, OptimizerHyper h, int tuningId,
            DeviceOptimizer.Tuning tuning) {
        List<TensorSlice> slices = shard();
        int n = 26510;
        int from = 1234;
        int total = n + 3000;
        SplittableRandom rnd = new SplittableRandom(17 + name.ordinal());
        float[] flat = params(total, rnd); // the shard and the elements around it
        float[] shard = java.util.Arrays.copyOfRange(flat, from, from + n);
        float[] gFlat = params(total, rnd); // values outside the shard must not matter
        try (NDManager m = root.newSubManager();
                Optimizer ref = Optimizer.create(h, slices, 2);
                DeviceOptimizer dev = DeviceOptimizer.create(h, slices, m, tuning)) {
            assertEquals(n, dev.length());
            NDArray p = DeviceCopy.upload(m, flat);
            NDArray g = DeviceCopy.upload(m, gFlat);
            for (int t = 0; t < STEPS; t++) {
                float[] gs = grads(n, t, rnd);
                System.arraycopy(gs, 0, gFlat, from, n);
                DeviceCopy.upload(gFlat, 0, g, 0, total);
                double lr = lr(name, t);
                ref.step(shard, gs, lr);
                dev.step(p, g, from, lr);
                float[] got = new float[total];
                DeviceCopy.download(p, 0, got, 0, total);
                String when = name.key() + " step " + (t + 1);
                Bits.assertFloats(shard, 0, got, from, n, when + " params");
                Bits.assertFloats(flat, 0, got, 0, from, when + " params before the shard");
                Bits.assertFloats(flat, from + n, got, from + n, total - from - n, when + " params after the shard");
                assertStatesEqual(ref.state(), dev.state(), when);
            }
        }
    }

    static void assertStatesEqual(OptimizerState want, OptimizerState got, String when) {
        assertEquals(want.step(), got.step(), when + " step count");
        assertEquals(want.hyper(), got.hyper(), when + " hyper");
        assertEquals(want.tensors().size(), got.tensors().size(), when + " slices");
        for (int i = 0; i < want.tensors().size(); i++) {
            TensorState a = want.tensors().get(i);
            TensorState b = got.tensors().get(i);
            String w = when + " " + a.slice.name() + " " + a.kind;
            assertEquals(a.slice, b.slice, w);
            assertEquals(a.kind, b.kind, w);
            Bits.assertFloats(a.m, b.m, w + " m");
            Bits.assertFloats(a.v, b.v, w + " v");
            Bits.assertBytes(a.c1, b.c1, w + " codes1");
            Bits.assertBytes(a.c2, b.c2, w + " codes2");
            Bits.assertFloats(a.absmax1, b.absmax1, w + " absmax1");
            Bits.assertFloats(a.absmax2, b.absmax2, w + " absmax2");
        }
    }

    /** state() -> load() into a fresh optimizer: the next steps are the same, and the Java optimizer's. */
    @ParameterizedTest
    @MethodSource("names")
    void stateShouldRoundTripThroughTheHost(OptimizerName name) {
        List<TensorSlice> slices = shard();
        int n = 26510;
        OptimizerHyper h = hyper(name);
        SplittableRandom rnd = new SplittableRandom(5);
        float[] p0 = params(n, rnd);
        float[] ref = p0.clone();
        DeviceOptimizer.Tuning tuning = new DeviceOptimizer.Tuning(1024, 3, 100);
        try (NDManager m = root.newSubManager(); Optimizer java = Optimizer.create(h, slices, 1);
                DeviceOptimizer a = DeviceOptimizer.create(h, slices, m, tuning)) {
            NDArray p = DeviceCopy.upload(m, p0);
            NDArray g = DeviceCopy.upload(m, new float[n]);
            for (int t = 0; t < 3; t++) {
                float[] gs = grads(n, t, rnd);
                DeviceCopy.upload(gs, 0, g, 0, n);
                java.step(ref, gs, lr(name, t));
                a.step(p, g, 0, lr(name, t));
            }
            OptimizerState saved = a.state();
            assertStatesEqual(java.state(), saved, name.key() + " saved");
            try (DeviceOptimizer b = DeviceOptimizer.create(h, slices, m, DeviceOptimizer.Tuning.DEFAULT)) {
                b.load(saved);
                assertEquals(3, b.stepCount());
                assertStatesEqual(saved, b.state(), name.key() + " loaded");
                float[] host = new float[n];
                DeviceCopy.download(p, 0, host, 0, n);
                NDArray q = DeviceCopy.upload(m, host);
                for (int t = 3; t < 5; t++) {
                    float[] gs = grads(n, t, rnd);
                    DeviceCopy.upload(gs, 0, g, 0, n);
                    java.step(ref, gs, lr(name, t));
                    a.step(p, g, 0, lr(name, t));
                    b.step(q, g, 0, lr(name, t));
                    float[] pa = new float[n];
                    float[] pb = new float[n];
                    DeviceCopy.download(p, 0, pa, 0, n);
                    DeviceCopy.download(q, 0, pb, 0, n);
                    Bits.assertFloats(ref, pa, name.key() + " original step " + (t + 1));
                    Bits.assertFloats(ref, pb, name.key() + " reloaded step " + (t + 1));
                    assertStatesEqual(a.state(), b.state(), name.key() + " states step " + (t + 1));
                }
            }
        }
    }

    static Stream<OptimizerName> names() {
        return Stream.of(OptimizerName.values());
    }

    /** Steps allocate only temporaries, all closed: no array count grows in any manager. */
    @ParameterizedTest
    @MethodSource("names")
    void stepsShouldNotLeakArrays(OptimizerName name) {
        List<TensorSlice> slices = shard();
        int n = 26510;
        SplittableRandom rnd = new SplittableRandom(3);
        try (NDManager buffers = root.newSubManager(); NDManager device = root.newSubManager();
                DeviceOptimizer opt = DeviceOptimizer.create(hyper(name), slices, device,
                        new DeviceOptimizer.Tuning(1024, 2, 4096))) {
            NDArray p = DeviceCopy.upload(buffers, params(n, rnd));
            NDArray g = DeviceCopy.upload(buffers, grads(n, 1, rnd));
            opt.step(p, g, 0, 1e-3);
            int inBuffers = ((BaseNDManager) buffers).getManagedArrays().size();
            int inDevice = ((BaseNDManager) device).getManagedArrays().size();
            int inRoot = ((BaseNDManager) root).getManagedArrays().size();
            for (int t = 0; t < 4; t++) {
                opt.step(p, g, 0, 1e-3);
                opt.state();
            }
            assertEquals(inBuffers, ((BaseNDManager) buffers).getManagedArrays().size(), "arrays in the buffers' manager");
            assertEquals(inDevice, ((BaseNDManager) device).getManagedArrays().size(), "arrays in the device manager");
            assertEquals(inRoot, ((BaseNDManager) root).getManagedArrays().size(), "arrays in the root manager");
        }
    }

    /** An optimizer built inside a caller's NDScope keeps its state when that scope closes. */
    @Test
    void stateShouldOutliveTheCallersScope() {
        List<TensorSlice> slices = shard();
        OptimizerHyper h = hyper(OptimizerName.ADAMW8BIT);
        DeviceOptimizer opt;
        try (ai.djl.ndarray.NDScope scope = new ai.djl.ndarray.NDScope()) {
            scope.suppressNotUsedWarning();
            opt = DeviceOptimizer.create(h, slices, root);
        }
        try (opt; NDManager m = root.newSubManager()) {
            SplittableRandom rnd = new SplittableRandom(1);
            opt.step(DeviceCopy.upload(m, params(26510, rnd)), DeviceCopy.upload(m, grads(26510, 0, rnd)), 0, 1e-3);
            assertEquals(1, opt.state().step());
        }
    }

    @Test
    void badInputShouldBeRejectedWithTheValue() {
        List<TensorSlice> slices = List.of(TensorSlice.whole("t", 5000));
        OptimizerHyper h = hyper(OptimizerName.ADAMW8BIT);
        try (NDManager m = root.newSubManager(); DeviceOptimizer opt = DeviceOptimizer.create(h, slices, m)) {
            NDArray p = DeviceCopy.zeros(m, 6000, DataType.FLOAT32);
            NDArray g = DeviceCopy.zeros(m, 6000, DataType.FLOAT32);
            assertMessage(() -> opt.step(p, g, 0, Double.NaN), "NaN");
            assertMessage(() -> opt.step(p, g, 0, -1e-3), "-0.001");
            assertMessage(() -> opt.step(p, g, -1, 1e-3), "from -1");
            assertMessage(() -> opt.step(p, g, 1001, 1e-3), "from 1001");
            assertMessage(() -> opt.step(null, g, 0, 1e-3), "flatParams is null");
            try (NDArray half = m.zeros(new Shape(6000), DataType.FLOAT16); NDArray square = m.zeros(new Shape(100, 60))) {
                assertMessage(() -> opt.step(half, g, 0, 1e-3), "float16");
                assertMessage(() -> opt.step(p, square, 0, 1e-3), "(100, 60)");
            }
            assertEquals(0, opt.stepCount(), "rejected steps do not count");
            OptimizerState lion = new OptimizerState(hyper(OptimizerName.LION), 1,
                    List.of(TensorState.zeros(slices.get(0), TensorState.Kind.FP32_1)));
            assertMessage(() -> opt.load(lion), "lion");
            OptimizerState two = new OptimizerState(h, 1, List.of(TensorState.zeros(slices.get(0), TensorState.Kind.Q8_2),
                    TensorState.zeros(TensorSlice.whole("u", 5), TensorState.Kind.FP32_2)));
            assertMessage(() -> opt.load(two), "2 slices");
            OptimizerState other = new OptimizerState(h, 1,
                    List.of(TensorState.zeros(new TensorSlice("t", 5000, 0, 4096), TensorState.Kind.Q8_2)));
            assertMessage(() -> opt.load(other), "4096");
        }
        assertMessage(() -> DeviceOptimizer.create(null, slices, root), "hyper");
        assertMessage(() -> DeviceOptimizer.create(h, slices, null), "deviceManager");
        assertMessage(() -> new DeviceOptimizer.Tuning(100, 1, 10), "100");
        OptimizerHyper tinyEps = new OptimizerHyper(OptimizerName.ADAMW8BIT, 0.9, 0.999, 1e-45, 0);
        try (NDManager m = root.newSubManager(); DeviceOptimizer opt = DeviceOptimizer.create(tinyEps, slices, m)) {
            NDArray p = DeviceCopy.zeros(m, 5000, DataType.FLOAT32);
            assertMessage(() -> opt.step(p, p, 0, 1e-3), "underflowed");
        }
    }

    static void assertMessage(org.junit.jupiter.api.function.Executable e, String part) {
        IllegalArgumentException x = assertThrows(IllegalArgumentException.class, e);
        assertTrue(x.getMessage().contains(part), "message '" + x.getMessage() + "' names " + part);
    }
}
