package dev.dreamcluster.optim.kernel;

/**
 * Whether the optimizer kernels use the Vector API ({@code jdk.incubator.vector}, Java 17). The JVM
 * must be started with {@code --add-modules jdk.incubator.vector} (bin/dreamcluster, bin/bench, the
 * tests and the worker JVMs the CLI starts all do); without it the scalar kernels run. Both give
 * identical bits (tested): the vector kernels perform the same float32 operations per element, lane by
 * lane. The choice is the JVM's and the processor's, never a setting read here: a run that wants the
 * scalar kernels starts its JVMs without the module.
 *
 * <p>Why the Vector API: Java 17's auto-vectoriser compiles no selects, so Lion's sign, the 8-bit
 * kernels' finite masks and NaN-skipping maxima stay scalar (and branchy: Lion ran at ~100 M params/s
 * against ~2,300 with vectors on the same core).
 */
public final class Simd {
    /** The JVM flag that enables the vector kernels. */
    public static final String JVM_FLAG = "--add-modules=jdk.incubator.vector";

    /** True when the vector kernels run. */
    public static final boolean ENABLED = ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent();

    /**
     * True when the 8-bit kernels may look their 256-entry code maps up in registers
     * ({@link VectorKernels#dequantize}): vector kernels with 16 float lanes (AVX-512), little-endian,
     * and a CPU whose flags list {@code avx512vbmi} (the byte permute vpermb; without it C2 would run
     * the byte rearranges lane by lane, ~20x slower than the gathers they replace). Linux's
     * /proc/cpuinfo is the only source read; elsewhere the kernels gather from the maps instead. Both
     * give identical bits (tested: the tests run both paths on a processor that has vpermb).
     */
    public static final boolean BYTE_PERMUTE = ENABLED && java.nio.ByteOrder.nativeOrder() == java.nio.ByteOrder.LITTLE_ENDIAN && VectorKernels.lanes() == 16
            && cpuFlag("avx512vbmi");

    private Simd() {}

    /** Whether the first "flags" line of /proc/cpuinfo lists {@code flag}; false if it cannot be read. */
    static boolean cpuFlag(String flag) {
        try (java.io.BufferedReader r = java.nio.file.Files.newBufferedReader(java.nio.file.Path.of("/proc/cpuinfo"))) {
            for (String line = r.readLine(); line != null; line = r.readLine()) {
                if (line.startsWith("flags")) {
                    return (" " + line.substring(line.indexOf(':') + 1) + " ").contains(" " + flag + " ");
                }
            }
        } catch (java.io.IOException | RuntimeException e) {
            // not Linux, or no /proc: the gather path
        }
        return false;
    }

    /** "vector (16 float lanes)" or "scalar (...why...)", for logs and benchmark headers. */
    public static String describe() {
        if (ENABLED) {
            return "vector (" + VectorKernels.lanes() + " float lanes" + (BYTE_PERMUTE ? ", 8-bit maps in registers" : ", 8-bit maps gathered") + ")";
        }
        return "scalar (start the JVM with " + JVM_FLAG + " for the vector kernels)";
    }
}
