package dev.dreamcluster.cli;

import dev.dreamcluster.optim.kernel.Simd;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * How the CLI starts another JVM on this machine (local workers, bench ranks): the same java, the
 * vector optimizer kernels enabled, and libtorch's OpenMP threads told to sleep when idle. A worker
 * shares its cores with the other local workers and the coordinator: with OpenMP's default spinning
 * a step ran 8-30x slower as soon as another process wanted a core; OMP_WAIT_POLICY=PASSIVE (set only
 * when the user has not set it) makes idle threads yield. glibc's allocator gets {@link #MALLOC_ENV}
 * (bin/dreamcluster exports the same for the JVMs it starts).
 */
final class ChildJvm {
    private ChildJvm() {}

    /** {@code java --add-modules=jdk.incubator.vector -XX:PerMethodTrapLimit=1000 <jvmArgs> -cp <this classpath>}, then the caller's arguments. */
    static List<String> command(String... jvmArgs) {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.add(Simd.JVM_FLAG);
        cmd.add(Simd.TRAP_LIMIT_FLAG);
        cmd.addAll(List.of(jvmArgs));
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        return cmd;
    }

    /**
     * glibc malloc settings for a JVM that runs libtorch on the CPU: one arena, never mmap, never give
     * memory back. libtorch allocates a step's tensors with malloc and DJL frees them together at the
     * step's end; by default glibc then returned those pages to the kernel (a non-main arena's heap is
     * trimmed, a chunk over the mmap threshold is unmapped) and the next step faulted them in again,
     * zeroed: on the 2-core VM a 1-worker step of the medium preset took 4799 ms, 1334 ms with these
     * (2026-12-07, bench step; torch 1.13 itself went 3568 -> 1518 ms under the same settings). The
     * resident memory stays at the step's high-water mark, which it reaches every step anyway.
     * Settings the user made win (bin/dreamcluster and this only fill in what is unset).
     */
    static final java.util.Map<String, String> MALLOC_ENV = java.util.Map.of("MALLOC_ARENA_MAX", "1", "MALLOC_MMAP_MAX_", "0",
            "MALLOC_TRIM_THRESHOLD_", "68719476736");

    /** A process builder for {@code command}, with OMP_WAIT_POLICY=PASSIVE and {@link #MALLOC_ENV} unless already set. */
    static ProcessBuilder builder(List<String> command) {
        ProcessBuilder pb = new ProcessBuilder(command);
        pb.environment().putIfAbsent("OMP_WAIT_POLICY", "PASSIVE");
        MALLOC_ENV.forEach(pb.environment()::putIfAbsent);
        return pb;
    }
}
