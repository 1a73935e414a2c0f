package dev.dreamcluster.nccl;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.Locale;
import org.bytedeco.cuda.global.cudart;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.Pointer;

/**
 * The NCCL half of {@code bin/gpu-check}: prints the NCCL, CUDA runtime and driver versions, checks
 * all-reduce, reduce-scatter and all-gather results (device buffers, and the host-staged API over
 * uneven ZeRO bounds) and times them at 64 MiB to 1 GiB (busbw as nccl-tests defines it: algbw x
 * 2(n-1)/n for all-reduce, x (n-1)/n for the others; 0 for one rank, so algbw is printed too).
 *
 * <pre>
 *   GpuCheck RANK WORLD ID_FILE [MIB,MIB..]   rank 0 writes a fresh unique id to ID_FILE, the others read it;
 *                                             the device buffers timed (default 64,256,1024 MiB)
 * </pre>
 *
 * Without CUDA it prints the reason and exits 2.
 */
public final class GpuCheck {
    private GpuCheck() {}

    public static void main(String[] args) throws Exception {
        if (args.length < 3 || args.length > 4) {
            bad("arguments", String.join(" ", args), "RANK WORLD ID_FILE [MIB,MIB..]");
        }
        int world = number(args[1], "WORLD", 1, 1024);
        int rank = number(args[0], "RANK", 0, world - 1);
        Path idFile = Path.of(args[2]);
        long[] sizes = java.util.Arrays.stream((args.length > 3 ? args[3] : "64,256,1024").split(",", -1))
                .mapToLong(s -> number(s, "MIB", 1, 8192)).toArray();
        String tag = "[rank " + rank + "/" + world + "] ";
        String why = Nccl.unavailableReason();
        if (why != null) {
            System.out.println(tag + "NCCL unavailable: " + why);
            System.exit(2);
        }
        int[] v = {0};
        cudart.cudaRuntimeGetVersion(v);
        int runtime = v[0];
        cudart.cudaDriverGetVersion(v);
        System.out.printf(Locale.ROOT, "%sNCCL %s, CUDA runtime %d, driver %d%n", tag, Nccl.versionString(Nccl.version()), runtime, v[0]);
        byte[] id = uniqueId(rank, idFile);
        long t0 = System.nanoTime();
        try (NcclCollective c = NcclCollective.connect(id, rank, world, 0, Duration.ofSeconds(120))) {
            System.out.printf(Locale.ROOT, "%scommunicator up in %.2f s%n", tag, (System.nanoTime() - t0) / 1e9);
            hostStaged(c, tag);
            for (long mib : sizes) {
                device(c, tag, mib << 20);
            }
        }
        System.out.println(tag + "ok");
    }

    private static int number(String s, String what, int min, int max) {
        try {
            int v = Integer.parseInt(s.trim());
            if (v >= min && v <= max) {
                return v;
            }
        } catch (NumberFormatException e) {
            // below
        }
        bad(what, s, "a whole number from " + min + " to " + max);
        return 0;
    }

    private static void bad(String what, String value, String allowed) {
        System.out.println("error: " + what + ": " + value + " is not allowed (" + allowed + ")");
        System.exit(2);
    }

    private static byte[] uniqueId(int rank, Path idFile) throws Exception {
        if (rank == 0) {
            byte[] id = Nccl.newUniqueId();
            Path tmp = idFile.resolveSibling(idFile.getFileName() + ".tmp");
            Files.write(tmp, id);
            Files.move(tmp, idFile, StandardCopyOption.ATOMIC_MOVE);
            return id;
        }
        long deadline = System.nanoTime() + 60_000_000_000L;
        while (!Files.exists(idFile)) {
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("no unique id in " + idFile + " after 60 s");
            }
            Thread.sleep(50);
        }
        return Files.readAllBytes(idFile);
    }

    /** Core's Collective API over uneven bounds (the ZeRO padding path), checked element by element. */
    private static void hostStaged(NcclCollective c, String tag) {
        int world = c.worldSize();
        int[] bounds = new int[world + 1];
        for (int r = 0; r < world; r++) {
            bounds[r + 1] = bounds[r] + 1000 + 333 * r; // uneven
        }
        float[] g = new float[bounds[world]];
        for (int i = 0; i < g.length; i++) {
            g[i] = (c.rank() + 1) * 0.5f + i % 13;
        }
        float sumRanks = world * (world + 1) * 0.25f;
        c.reduceScatter(g, bounds);
        check(tag, "reduce-scatter (host, uneven)", g, bounds[c.rank()], bounds[c.rank() + 1], i -> sumRanks + world * (i % 13));
        c.allGather(g, bounds);
        check(tag, "all-gather (host, uneven)", g, 0, g.length, i -> sumRanks + world * (i % 13));
        float[] a = new float[4097];
        java.util.Arrays.fill(a, c.rank() + 1);
        c.allReduce(a, a.length);
        check(tag, "all-reduce (host)", a, 0, a.length, i -> 2 * sumRanks);
    }

    private interface Expect {
        float at(int i);
    }

    private static void check(String tag, String what, float[] got, int from, int to, Expect e) {
        for (int i = from; i < to; i++) {
            if (Math.abs(got[i] - e.at(i)) > 1e-3f * Math.max(1, Math.abs(e.at(i)))) {
                System.out.printf(Locale.ROOT, "%s%s WRONG at %d: %f, expected %f%n", tag, what, i, got[i], e.at(i));
                return;
            }
        }
        System.out.println(tag + what + " correct (" + (to - from) + " elements)");
    }

    /** Device buffers of {@code bytes}: one correctness check per operation, then timings. */
    private static void device(NcclCollective c, String tag, long bytes) {
        int world = c.worldSize();
        long count = bytes / 4;
        long block = count / world;
        Pointer buf = new Pointer();
        NcclCollective.check(cudart.cudaMalloc(buf, bytes), "cudaMalloc");
        FloatPointer host = new FloatPointer(count);
        try {
            fill(host, count, c.rank() + 1);
            NcclCollective.check(cudart.cudaMemcpy(buf, host, bytes, cudart.cudaMemcpyHostToDevice), "cudaMemcpy");
            c.allReduceDevice(buf.address(), count, NcclCollective.FLOAT32);
            float expect = world * (world + 1) / 2f;
            verify(c, tag, "all-reduce", buf, host, 0, count, expect, bytes);
            double ar = time(() -> c.allReduceDevice(buf.address(), count, NcclCollective.FLOAT32));
            fill(host, count, c.rank() + 1);
            NcclCollective.check(cudart.cudaMemcpy(buf, host, bytes, cudart.cudaMemcpyHostToDevice), "cudaMemcpy");
            c.reduceScatterDevice(buf.address(), block, NcclCollective.FLOAT32);
            verify(c, tag, "reduce-scatter", buf, host, c.rank() * block, block, expect, bytes);
            double rs = time(() -> c.reduceScatterDevice(buf.address(), block, NcclCollective.FLOAT32));
            fill(host, count, c.rank() + 1);
            NcclCollective.check(cudart.cudaMemcpy(buf, host, bytes, cudart.cudaMemcpyHostToDevice), "cudaMemcpy");
            c.allGatherDevice(buf.address(), block, NcclCollective.FLOAT32);
            NcclCollective.check(cudart.cudaMemcpy(host, buf, bytes, cudart.cudaMemcpyDeviceToHost), "cudaMemcpy");
            boolean ok = true;
            for (int r = 0; r < world && ok; r++) {
                ok = host.get(r * block) == r + 1 && host.get(r * block + block - 1) == r + 1;
            }
            System.out.printf(Locale.ROOT, "%s%4d MiB all-gather %s%n", tag, bytes >> 20, ok ? "correct" : "WRONG");
            double ag = time(() -> c.allGatherDevice(buf.address(), block, NcclCollective.FLOAT32));
            double gb = bytes / 1e9;
            System.out.printf(Locale.ROOT, "%s%4d MiB  all-reduce %.3f ms algbw %.1f busbw %.1f GB/s | reduce-scatter %.3f ms busbw %.1f"
                    + " | all-gather %.3f ms busbw %.1f%n", tag, bytes >> 20, ar * 1e3, gb / ar, gb / ar * 2 * (world - 1) / world,
                    rs * 1e3, gb / rs * (world - 1) / world, ag * 1e3, gb / ag * (world - 1) / world);
        } finally {
            cudart.cudaFree(buf);
            host.close();
        }
    }

    private static void fill(FloatPointer host, long count, float value) {
        float[] chunk = new float[1 << 20];
        java.util.Arrays.fill(chunk, value);
        for (long i = 0; i < count; i += chunk.length) {
            host.position(i).put(chunk, 0, (int) Math.min(chunk.length, count - i));
        }
        host.position(0);
    }

    private static void verify(NcclCollective c, String tag, String what, Pointer buf, FloatPointer host, long from, long n,
            float expect, long bytes) {
        NcclCollective.check(cudart.cudaMemcpy(host, buf, bytes, cudart.cudaMemcpyDeviceToHost), "cudaMemcpy");
        boolean ok = host.get(from) == expect && host.get(from + n - 1) == expect && host.get(from + n / 2) == expect;
        System.out.printf(Locale.ROOT, "%s%4d MiB %s %s%n", tag, bytes >> 20, what, ok ? "correct" : "WRONG (" + host.get(from) + ")");
    }

    /** Mean seconds of one operation over a few runs after one warm-up (each call waits for completion). */
    private static double time(Runnable op) {
        op.run();
        int n = 5;
        long t = System.nanoTime();
        for (int i = 0; i < n; i++) {
            op.run();
        }
        return (System.nanoTime() - t) / 1e9 / n;
    }
}
