package dev.dreamcluster.optim.kernel;

/**
 * Whether the optimizer kernels use the Vector API ({@code jdk.incubator.vector}, Java 17). The JVM
 * must be started with {@code --add-modules jdk.incubator.vector} (bin/dreamcluster, bin/bench, the
 * tests and the worker JVMs the CLI starts all do); without it, or with
 * {@code -Ddreamcluster.kernels=scalar}, the scalar kernels run. Both give identical bits (tested):
 * the vector kernels perform the same float32 operations per element, lane by lane.
 *
 * <p>Why the Vector API: Java 17's auto-vectoriser compiles no selects, so Lion's sign, the 8-bit
 * kernels' finite masks and NaN-skipping maxima stay scalar (and branchy: Lion ran at ~100 M params/s
 * against ~2,300 with vectors on the same core).
 */
public final class Simd {
    /** The JVM flag that enables the vector kernels. */
    public static final String JVM_FLAG = "--add-modules=jdk.incubator.vector";

    /** True when the vector kernels run. */
    public static final boolean ENABLED = ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent()
            && !"scalar".equals(System.getProperty("dreamcluster.kernels"));

    private Simd() {}

    /** "vector (16 float lanes)" or "scalar (...why...)", for logs and benchmark headers. */
    public static String describe() {
        if (ENABLED) {
            return "vector (" + VectorKernels.lanes() + " float lanes)";
        }
        return ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent() ? "scalar (-Ddreamcluster.kernels=scalar)"
                : "scalar (start the JVM with " + JVM_FLAG + " for the vector kernels)";
    }
}
