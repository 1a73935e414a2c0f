package dev.dreamcluster.worker.check;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.GradientCollector;
import dev.dreamcluster.worker.model.ConvForm;
import dev.dreamcluster.worker.model.OpShape;
import dev.dreamcluster.worker.model.Ops;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Measures operations against float64. For one {@link OpShape}: random inputs (N(0,1) activations,
 * weights scaled by 1/sqrt(fan-in)) are rounded to the compute dtype; the op runs once in that dtype
 * and once in float64 on the same rounded values; the error is the largest relative L2 distance
 * over the output and the gradient of every input (upstream gradient N(0,1)). So only the op's own
 * arithmetic is measured, never the rounding of its inputs.
 *
 * <p>Cost: each op forward and backward once in the compute dtype per candidate form and once in
 * float64, at the real shape (float64 convolutions on a CPU run the slow reference kernel). Memory:
 * the op's inputs, output and gradients in both dtypes.
 */
public final class OpCheck {
    /**
     * The largest error called exact in float32. Correct float32 kernels measure 1e-7 to 3e-6 here
     * (sums of up to a few thousand products); the defect this exists for measures 0.2-0.9 or NaN.
     */
    public static final double TOLERANCE_FP32 = 1e-4;

    /** One measurement: the op at its shape, the form tried (convolutions), the error and the verdict. */
    public record Row(OpShape shape, String form, int threads, double error, boolean exact) {}

    private final NDManager manager;
    private final DataType dtype;
    private final double tolerance;
    private final long seed;

    /**
     * @param manager where the check's tensors live (its device is the device measured)
     * @param dtype the compute dtype (float32, or float16 on a GPU with amp)
     */
    public OpCheck(NDManager manager, DataType dtype, long seed) {
        this.manager = manager;
        this.dtype = dtype;
        this.tolerance = dtype == DataType.FLOAT32 ? TOLERANCE_FP32 : 2e-2;
        this.seed = seed;
    }

    public double tolerance() {
        return tolerance;
    }

    /**
     * Measures every shape and chooses a form for each convolution in {@code ops}.
     *
     * @return every row measured (convolutions: each form tried until one is exact)
     * @throws OpCheckFailed at the first op with no exact form (the node must not train)
     */
    public List<Row> checkAll(Collection<OpShape> shapes, Ops ops) {
        List<Row> rows = new ArrayList<>();
        int i = 0;
        for (OpShape s : shapes) {
            long opSeed = seed * 1_000_003L + i++;
            if (s instanceof OpShape.Conv c) {
                Row exact = null;
                for (ConvForm f : ConvForm.values()) {
                    Row r = measure(s, f, opSeed);
                    rows.add(r);
                    if (r.exact()) {
                        exact = r;
                        ops.choose(c, f);
                        break;
                    }
                }
                if (exact == null) {
                    throw new OpCheckFailed(rows.get(rows.size() - ConvForm.values().length), ConvForm.values().length);
                }
            } else {
                Row r = measure(s, null, opSeed);
                rows.add(r);
                if (!r.exact()) {
                    throw new OpCheckFailed(r, 1);
                }
            }
        }
        return rows;
    }

    /** One op at one shape (convolutions in the given form), in the compute dtype against float64. */
    public Row measure(OpShape s, ConvForm form, long opSeed) {
        boolean grad = JniUtils.isGradMode();
        try {
            List<float[]> inputs = inputs(s, new SplittableRandom(opSeed));
            List<double[]> low = run(s, form, inputs, dtype);
            List<double[]> ref = run(s, ConvForm.DIRECT, inputs, DataType.FLOAT64);
            double err = 0;
            for (int k = 0; k < ref.size(); k++) {
                err = Math.max(err, relativeL2(low.get(k), ref.get(k)));
            }
            return new Row(s, form == null ? "-" : form.name().toLowerCase(java.util.Locale.ROOT), JniUtils.getNumThreads(), err,
                    err <= tolerance);
        } finally {
            JniUtils.setGradMode(grad);
        }
    }

    /** Relative L2 distance; NaN or infinite values anywhere give +Inf. */
    static double relativeL2(double[] a, double[] ref) {
        double num = 0;
        double den = 0;
        for (int i = 0; i < a.length; i++) {
            double d = a[i] - ref[i];
            num += d * d;
            den += ref[i] * ref[i];
        }
        if (!Double.isFinite(num) || !Double.isFinite(den)) {
            return Double.POSITIVE_INFINITY;
        }
        return den == 0 ? Math.sqrt(num) : Math.sqrt(num / den);
    }

    /** The op's inputs (activations, then parameters), then the upstream gradient, as float32 values. */
    private static List<float[]> inputs(OpShape s, SplittableRandom r) {
        List<float[]> in = new ArrayList<>();
        List<Shape> shapes = shapes(s);
        in.add(gauss(r, shapes.get(0).size(), s instanceof OpShape.Activation ? 1.5 : 1));
        if (s instanceof OpShape.Attention) { // keys and values are activations too
            in.add(gauss(r, shapes.get(1).size(), 1));
            in.add(gauss(r, shapes.get(2).size(), 1));
        } else if (s instanceof OpShape.GroupNorm || s instanceof OpShape.LayerNorm) { // gamma around 1, beta small
            in.add(gauss(r, shapes.get(1).size(), 1));
            in.add(gauss(r, shapes.get(2).size(), 0.1));
        } else if (shapes.size() > 1) { // conv and linear: weights by 1/sqrt(fan-in), a small bias
            Shape w = shapes.get(1);
            in.add(gauss(r, w.size(), 1 / Math.sqrt(w.size() / (double) w.get(0))));
            if (shapes.size() > 2) {
                in.add(gauss(r, shapes.get(2).size(), 0.1));
            }
        }
        return in;
    }

    private static float[] gauss(SplittableRandom r, long n, double scale) {
        float[] v = new float[Math.toIntExact(n)];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) (nextGaussian(r) * scale);
        }
        return v;
    }

    private static double nextGaussian(SplittableRandom r) {
        double u;
        double v;
        double s;
        do {
            u = 2 * r.nextDouble() - 1;
            v = 2 * r.nextDouble() - 1;
            s = u * u + v * v;
        } while (s >= 1 || s == 0);
        return u * Math.sqrt(-2 * Math.log(s) / s);
    }

    /** Runs the op in {@code dt}: returns the output, then each input's gradient, as doubles. */
    private List<double[]> run(OpShape s, ConvForm form, List<float[]> values, DataType dt) {
        try (NDManager m = manager.newSubManager()) {
            List<Shape> shapes = shapes(s);
            NDList in = new NDList();
            for (int k = 0; k < shapes.size(); k++) {
                NDArray a = m.create(values.get(k), shapes.get(k)).toType(dt, true);
                a.setRequiresGradient(true);
                in.add(a);
            }
            NDArray y;
            JniUtils.setGradMode(true);
            try (GradientCollector gc = Engine.getEngine("PyTorch").newGradientCollector()) {
                y = apply(s, form, in, m);
                NDArray upstream = m.create(gauss(new SplittableRandom(y.size() * 31 + shapes.size()), y.size(), 1), y.getShape())
                        .toType(dt, true);
                gc.backward(y.mul(upstream).sum());
            }
            List<double[]> out = new ArrayList<>();
            out.add(y.toType(DataType.FLOAT64, true).toDoubleArray());
            for (NDArray a : in) {
                out.add(a.getGradient().toType(DataType.FLOAT64, true).toDoubleArray());
            }
            return out;
        }
    }

    /** The shapes of the op's inputs: the activation(s) first, then weight and bias or gamma and beta. */
    static List<Shape> shapes(OpShape s) {
        if (s instanceof OpShape.Conv c) {
            return c.bias() ? List.of(c.x(), c.w(), new Shape(c.w().get(0))) : List.of(c.x(), c.w());
        }
        if (s instanceof OpShape.Linear l) {
            return l.bias() ? List.of(l.x(), l.w(), new Shape(l.w().get(0))) : List.of(l.x(), l.w());
        }
        if (s instanceof OpShape.GroupNorm g) {
            return List.of(g.x(), new Shape(g.x().get(1)), new Shape(g.x().get(1)));
        }
        if (s instanceof OpShape.LayerNorm l) {
            Shape last = new Shape(l.x().get(l.x().dimension() - 1));
            return List.of(l.x(), last, last);
        }
        if (s instanceof OpShape.Attention a) {
            return List.of(a.q(), a.k(), a.k());
        }
        return List.of(((OpShape.Activation) s).x());
    }

    /** The op through a fresh {@link Ops} (convolutions in {@code form}), exactly as the models call it. */
    private static NDArray apply(OpShape s, ConvForm form, NDList in, NDManager m) {
        Ops ops = new Ops();
        if (s instanceof OpShape.Conv c) {
            ops.choose(c, form);
            return ops.conv(in.get(0), in.get(1), c.bias() ? in.get(2) : null, c.stride(), c.pad());
        }
        if (s instanceof OpShape.Linear l) {
            return ops.linear(in.get(0), in.get(1), l.bias() ? in.get(2) : null);
        }
        if (s instanceof OpShape.GroupNorm g) {
            return ops.groupNorm(in.get(0), g.groups(), in.get(1), in.get(2), g.eps());
        }
        if (s instanceof OpShape.LayerNorm l) {
            return ops.layerNorm(in.get(0), in.get(1), in.get(2), l.eps());
        }
        if (s instanceof OpShape.Attention a) {
            return ops.attention(in.get(0), in.get(1), in.get(2), a.heads(),
                    a.masked() ? Ops.causalMask(m, a.q().get(1), a.k().get(1), in.get(0).getDataType()) : null);
        }
        OpShape.Activation a = (OpShape.Activation) s;
        return switch (a.kind()) {
            case "silu" -> ops.silu(in.get(0));
            case "gelu" -> ops.gelu(in.get(0));
            case "quick_gelu" -> ops.quickGelu(in.get(0));
            case "geglu" -> ops.geglu(in.get(0));
            default -> throw new IllegalArgumentException("activation " + a.kind());
        };
    }

    /** What the node reports when an op has no exact form: the op, the shape, the error, the library. */
    public static final class OpCheckFailed extends dev.dreamcluster.run.TrainingHalted {
        private final Row row;

        OpCheckFailed(Row row, int formsTried) {
            super(describe(row, formsTried));
            this.row = row;
        }

        public Row row() {
            return row;
        }

        private static String describe(Row r, int formsTried) {
            return "op check: " + r.shape().key() + " is not exact on this machine (relative L2 error " + String.format("%.3g", r.error())
                    + " against float64" + (formsTried > 1 ? " in every one of " + formsTried + " forms" : "") + ", allowed 1e-4; "
                    + library() + ", " + r.threads() + " threads); refusing to train on wrong gradients (see docs/known-defects.md)";
        }
    }

    /** libtorch's version and the device kind, for messages and the doctor table. */
    public static String library() {
        Engine e = Engine.getEngine("PyTorch");
        return "libtorch " + e.getVersion();
    }
}
