package dev.dreamcluster.cli;

import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.config.Json;
import dev.dreamcluster.config.OptimizerName;
import dev.dreamcluster.io.AtomicFiles;
import dev.dreamcluster.optim.Optimizer;
import dev.dreamcluster.optim.OptimizerHyper;
import dev.dreamcluster.optim.TensorSlice;
import dev.dreamcluster.optim.TensorState;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code dreamcluster optim-replay}: runs one optimizer over recorded gradients, for parity checks
 * against any external reference (bitsandbytes, torch, lion-pytorch). The whole input is one tensor,
 * so the 4096-element threshold of the 8-bit optimizers applies to n.
 */
@Command(name = "optim-replay", mixinStandardHelpOptions = true,
        description = "Replay an optimizer over raw little-endian float32 params0 [n] and grads [K, n].")
final class OptimReplayCommand implements Callable<Integer> {
    @Option(names = "--optimizer", required = true, paramLabel = "NAME", description = "adamw, adamw8bit, lion, lion8bit")
    String optimizer;

    @Option(names = "--lr", required = true, paramLabel = "F")
    double lr;

    @Option(names = "--betas", required = true, paramLabel = "B1,B2", split = ",")
    double[] betas;

    @Option(names = "--eps", paramLabel = "F", defaultValue = "1e-8", description = "AdamW variants (default 1e-8)")
    double eps;

    @Option(names = "--weight_decay", required = true, paramLabel = "F")
    double weightDecay;

    @Option(names = "--params0", required = true, paramLabel = "FILE", description = "float32 [n]")
    Path params0;

    @Option(names = "--grads", required = true, paramLabel = "FILE", description = "float32 [K, n], row-major")
    Path grads;

    @Option(names = "--steps", paramLabel = "K", description = "steps to run (default: every row of --grads)")
    Integer steps;

    @Option(names = "--out", required = true, paramLabel = "FILE", description = "float32 [K, n]: params after each step")
    Path out;

    @Option(names = "--state_out", paramLabel = "DIR",
            description = "final state: state1.bin/state2.bin (uint8 codes or float32), absmax1.bin/absmax2.bin")
    Path stateOut;

    @Option(names = "--threads", paramLabel = "N", description = "kernel threads (results do not depend on it)")
    Integer threads;

    @Override
    public Integer call() throws IOException {
        OptimizerName name = OptimizerName.parse(optimizer, "--optimizer");
        if (!(lr > 0) || !Double.isFinite(lr)) {
            throw ConfigError.invalid("--lr", Json.pyRepr(lr), "a finite number > 0");
        }
        if (betas.length != 2 || !(betas[0] >= 0 && betas[0] < 1) || !(betas[1] >= 0 && betas[1] < 1)) {
            throw ConfigError.invalid("--betas", java.util.Arrays.toString(betas), "two numbers B1,B2 each in [0, 1)");
        }
        if (!name.isLion() && !(eps > 0)) {
            throw ConfigError.invalid("--eps", Json.pyRepr(eps), "a number > 0 for " + name.key());
        }
        if (!(weightDecay >= 0) || !Double.isFinite(weightDecay)) {
            throw ConfigError.invalid("--weight_decay", Json.pyRepr(weightDecay), "a finite number >= 0");
        }
        float[] p = readF32(params0, "--params0");
        int n = p.length;
        if (n == 0) {
            throw new ConfigError("--params0: " + Json.quote(params0.toString()) + " is empty (need n >= 1 float32 values)");
        }
        float[] g = readF32(grads, "--grads");
        if (g.length % n != 0 || g.length == 0) {
            throw ConfigError.invalid("--grads", g.length + " values", "a multiple of n = " + n + " (K rows of n)");
        }
        int rows = g.length / n;
        int k = steps == null ? rows : steps;
        if (k < 1 || k > rows) {
            throw ConfigError.invalid("--steps", Integer.toString(k), "1.." + rows + " (rows in --grads)");
        }
        int nThreads = threads == null ? Runtime.getRuntime().availableProcessors() : threads;
        if (nThreads < 1) {
            throw ConfigError.invalid("--threads", Integer.toString(nThreads), "a count >= 1");
        }

        ByteBuffer result = ByteBuffer.allocate(Math.multiplyExact(Math.multiplyExact(k, n), 4)).order(ByteOrder.LITTLE_ENDIAN);
        float[] row = new float[n];
        try (Optimizer opt = Optimizer.create(new OptimizerHyper(name, betas[0], betas[1], eps, weightDecay),
                List.of(TensorSlice.whole("replay", n)), nThreads)) {
            for (int t = 0; t < k; t++) {
                System.arraycopy(g, t * n, row, 0, n);
                opt.step(p, row, lr);
                result.asFloatBuffer().put(t * n, p);
            }
            if (stateOut != null) {
                writeState(opt.state().tensors().get(0), stateOut);
            }
        }
        if (out.toAbsolutePath().getParent() != null) {
            Files.createDirectories(out.toAbsolutePath().getParent());
        }
        AtomicFiles.write(out, result);
        return 0;
    }

    private static float[] readF32(Path file, String flag) {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (IOException e) {
            throw new ConfigError(flag + ": cannot read " + Json.quote(file.toString()) + " (" + e.getClass().getSimpleName() + ")");
        }
        if (bytes.length % 4 != 0) {
            throw ConfigError.invalid(flag, bytes.length + " bytes in " + Json.quote(file.toString()),
                    "raw little-endian float32, a multiple of 4 bytes");
        }
        float[] out = new float[bytes.length / 4];
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(out);
        return out;
    }

    /** Writes the state files into a temporary sibling folder, then fsyncs and renames it into place (AtomicFiles). */
    private static void writeState(TensorState s, Path dir) throws IOException {
        Path abs = dir.toAbsolutePath();
        Path tmp = abs.resolveSibling(abs.getFileName() + ".tmp-" + ProcessHandle.current().pid());
        Files.createDirectories(tmp);
        boolean q8 = s.c1 != null;
        write(tmp.resolve("state1.bin"), q8 ? ByteBuffer.wrap(s.c1) : f32(s.m));
        if (q8 ? s.c2 != null : s.v != null) {
            write(tmp.resolve("state2.bin"), q8 ? ByteBuffer.wrap(s.c2) : f32(s.v));
        }
        if (s.absmax1 != null) {
            write(tmp.resolve("absmax1.bin"), f32(s.absmax1));
        }
        if (s.absmax2 != null) {
            write(tmp.resolve("absmax2.bin"), f32(s.absmax2));
        }
        AtomicFiles.replaceFolder(tmp, abs);
    }

    private static ByteBuffer f32(float[] a) {
        ByteBuffer b = ByteBuffer.allocate(a.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(a);
        return b;
    }

    private static void write(Path file, ByteBuffer data) {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            while (data.hasRemaining()) {
                ch.write(data);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
