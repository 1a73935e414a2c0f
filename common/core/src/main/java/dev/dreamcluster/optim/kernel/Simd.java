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

    /**
     * The C2 setting every JVM that runs the vector kernels gets with {@link #JVM_FLAG}: up to 1000
     * uncommon traps of one reason per compilation instead of 100. Why: C2 counts the traps recorded
     * in every method it inlines into one compilation, and a kernel inlines ~50 Vector API methods,
     * each with a few class-check traps left by earlier compilations of other kernels. Past 100, C2
     * stops guarding a type-profiled call with a trap and compiles a slow path beside it; the vector's
     * exact class is then unknown, the Vector API intrinsic after it fails, and the vectors are
     * allocated as objects. Whether the limit was reached depended on what compiled before: in 9 of 23
     * runs of {@code bin/bench optim} the 8-bit dequantize ran 1.0-4.5 ns per parameter instead of
     * 0.45 (LogCompilation of a slow run: "observe trap='class_check' count='0' mcount='0'
     * ccount='188'" in its compile, and the store after {@code reinterpretAsFloats()} "failed to inline
     * (intrinsic)"; that run's profile allocated ~470 MB). With this flag: 13 of 13 runs fast
     * (2026-12-07, the 2-core VM). A JVM without it computes the same bits, sometimes slower.
     */
    public static final String TRAP_LIMIT_FLAG = "-XX:PerMethodTrapLimit=1000";

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

    /** This JVM's PerMethodTrapLimit ({@link #TRAP_LIMIT_FLAG}), or "unknown" where it cannot be read. */
    static String trapLimit() {
        try {
            return java.lang.management.ManagementFactory.getPlatformMXBean(com.sun.management.HotSpotDiagnosticMXBean.class)
                    .getVMOption("PerMethodTrapLimit").getValue();
        } catch (RuntimeException | LinkageError e) {
            return "unknown"; // not HotSpot
        }
    }

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
            String traps = trapLimit();
            return "vector (" + VectorKernels.lanes() + " float lanes" + (BYTE_PERMUTE ? ", 8-bit maps in registers" : ", 8-bit maps gathered")
                    + ", C2 trap limit " + traps + ("1000".equals(traps) ? "" : ": start the JVM with " + TRAP_LIMIT_FLAG
                    + " or the kernels may compile to allocated vectors") + ")";
        }
        return "scalar (start the JVM with " + JVM_FLAG + " for the vector kernels)";
    }
}
