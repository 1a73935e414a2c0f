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
 * when the user has not set it) makes idle threads yield.
 */
final class ChildJvm {
    private ChildJvm() {}

    /** {@code java --add-modules=jdk.incubator.vector <jvmArgs> -cp <this classpath>}, then the caller's arguments. */
    static List<String> command(String... jvmArgs) {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.add(Simd.JVM_FLAG);
        cmd.addAll(List.of(jvmArgs));
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        return cmd;
    }

    /** A process builder for {@code command}, with OMP_WAIT_POLICY=PASSIVE unless already set. */
    static ProcessBuilder builder(List<String> command) {
        ProcessBuilder pb = new ProcessBuilder(command);
        pb.environment().putIfAbsent("OMP_WAIT_POLICY", "PASSIVE");
        return pb;
    }
}
