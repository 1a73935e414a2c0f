package dev.dreamcluster.cli;

import dev.dreamcluster.collective.Collective;
import dev.dreamcluster.collective.RingCollective;
import dev.dreamcluster.collective.RingSchedule;
import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.config.Json;
import java.io.IOException;
import java.io.PrintWriter;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code dreamcluster bench}: measured numbers for the README. */
@Command(name = "bench", mixinStandardHelpOptions = true, description = "Benchmarks that print numbers.",
        subcommands = {BenchCommand.CollectiveBench.class})
final class BenchCommand {

    /**
     * The TCP ring between N local processes: all-reduce, reduce-scatter and all-gather of one buffer,
     * with algbw = bytes / time and busbw as nccl-tests defines it (x 2(n-1)/n for all-reduce,
     * x (n-1)/n for the others), next to raw TCP loopback throughput measured in the same run.
     */
    @Command(name = "collective", mixinStandardHelpOptions = true, description = "Ring collective bandwidth between N local processes.")
    static final class CollectiveBench implements Callable<Integer> {
        /** Any constant: every rank of one bench shares it, and other runs are refused. */
        static final long BENCH_RUN_ID = 0xBE7C4L;
        /** The bench's run secret travels to the child ranks in the environment (argv is world-readable). */
        static final String SECRET_ENV = "DREAMCLUSTER_RING_SECRET";

        @Option(names = "--workers", paramLabel = "N", defaultValue = "2")
        int workers;

        @Option(names = "--bytes", paramLabel = "SIZE", defaultValue = "256MiB", description = "buffer size: B, KiB, MiB or GiB")
        String bytes;

        @Option(names = "--iters", paramLabel = "K", defaultValue = "5", description = "timed iterations per operation")
        int iters;

        @Option(names = "--rank", hidden = true)
        Integer rank;

        @Option(names = "--peers", hidden = true, split = ",")
        List<String> peers;

        @Spec
        picocli.CommandLine.Model.CommandSpec spec;

        @Override
        public Integer call() throws Exception {
            long size = parseBytes(bytes);
            if (workers < 1 || workers > 64) {
                throw ConfigError.invalid("--workers", Integer.toString(workers), "1..64 local processes");
            }
            if (iters < 1) {
                throw ConfigError.invalid("--iters", Integer.toString(iters), ">= 1");
            }
            int floats = Math.toIntExact(size / 4);
            if (rank != null) {
                runRank(rank, addresses(peers), floats, null, System.getenv(SECRET_ENV));
                return 0;
            }
            String secret = RingCollective.newSecret();
            // parent: reserve ports, start ranks 1..n-1 as child JVMs, run rank 0 here
            List<InetSocketAddress> addrs = new ArrayList<>();
            List<ServerSocketChannel> reserved = new ArrayList<>();
            for (int r = 0; r < workers; r++) {
                ServerSocketChannel s = ServerSocketChannel.open().bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
                reserved.add(s);
                addrs.add((InetSocketAddress) s.getLocalAddress());
            }
            String peerArg = String.join(",", addrs.stream().map(a -> a.getHostString() + ":" + a.getPort()).toList());
            List<Process> children = new ArrayList<>();
            for (int r = 1; r < workers; r++) {
                reserved.get(r).close();
                ProcessBuilder pb = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Xmx4g",
                        "-cp", System.getProperty("java.class.path"), Main.class.getName(), "bench", "collective",
                        "--workers", Integer.toString(workers), "--bytes", bytes, "--iters", Integer.toString(iters),
                        "--rank", Integer.toString(r), "--peers", peerArg).inheritIO();
                pb.environment().put(SECRET_ENV, secret);
                children.add(pb.start());
            }
            try {
                runRank(0, addrs, floats, reserved.get(0), secret);
            } finally {
                for (Process p : children) {
                    if (!p.waitFor(120, TimeUnit.SECONDS)) {
                        p.destroyForcibly();
                    }
                }
            }
            for (Process p : children) {
                if (p.exitValue() != 0) {
                    throw new IllegalStateException("a bench process exited with " + p.exitValue());
                }
            }
            return 0;
        }

        private void runRank(int r, List<InetSocketAddress> addrs, int floats, ServerSocketChannel server, String secret)
                throws IOException {
            ServerSocketChannel s = server != null ? server : ServerSocketChannel.open().bind(addrs.get(r));
            float[] data = new float[floats];
            java.util.Arrays.fill(data, 1f);
            int n = addrs.size();
            try (Collective c = RingCollective.connect(BENCH_RUN_ID, RingCollective.decodeSecret(secret), r, addrs, s,
                    Duration.ofSeconds(60))) {
                int[] bounds = RingSchedule.evenBounds(floats, n);
                double ar = time(() -> c.allReduce(data, floats), c);
                double rs = time(() -> c.reduceScatter(data, bounds), c);
                double ag = time(() -> c.allGather(data, bounds), c);
                c.barrier();
                if (r == 0) {
                    // measured while the other ranks wait in their close(): the machine is otherwise idle
                    double raw = rawLoopback((long) floats * 4, 1);
                    double rawRing = n > 1 ? rawLoopback((long) floats * 4, n) : raw;
                    report(n, (long) floats * 4, ar, rs, ag, raw, rawRing);
                }
            }
        }

        /** Seconds per operation: two warm-ups (JIT), then the mean of {@code iters}, each started after a barrier. */
        private double time(Runnable op, Collective c) {
            op.run();
            op.run();
            double total = 0;
            for (int i = 0; i < iters; i++) {
                c.barrier();
                long t0 = System.nanoTime();
                op.run();
                total += (System.nanoTime() - t0) / 1e9;
            }
            return total / iters;
        }

        private void report(int n, long size, double ar, double rs, double ag, double raw, double rawRing) {
            PrintWriter out = spec.commandLine().getOut();
            double gb = size / 1e9;
            out.printf(Locale.ROOT, "ring collective, %d processes on loopback, %s per rank (%d B), %d iterations%n", n, bytes, size, iters);
            out.printf(Locale.ROOT, "%-15s %12s %14s %14s %12s%n", "operation", "time (ms)", "algbw (GB/s)", "busbw (GB/s)", "busbw/raw");
            row(out, "all-reduce", ar, gb, 2.0 * (n - 1) / n, raw);
            row(out, "reduce-scatter", rs, gb, (double) (n - 1) / n, raw);
            row(out, "all-gather", ag, gb, (double) (n - 1) / n, raw);
            out.printf(Locale.ROOT, "%-15s %12s %14.2f %14s %12s%n", "raw TCP", "", raw, "", "1.00");
            out.printf(Locale.ROOT, "raw TCP with %d streams at once (the ring's traffic shape): %.2f GB/s per stream;"
                    + " all-reduce busbw is %.2fx of that%n", n, rawRing, (gb / ar) * 2.0 * (n - 1) / n / rawRing);
            out.flush();
        }

        private static void row(PrintWriter out, String name, double t, double gb, double factor, double raw) {
            double alg = gb / t;
            double bus = alg * factor;
            out.printf(Locale.ROOT, "%-15s %12.1f %14.2f %14.2f %12.2f%n", name, t * 1e3, alg, bus, raw > 0 ? bus / raw : Double.NaN);
        }

        /**
         * One-way TCP throughput over loopback with direct buffers (1 MiB writes), in GB/s per stream,
         * with {@code streams} streams running at once (each a writer and a reader thread).
         */
        static double rawLoopback(long size, int streams) throws IOException {
            ExecutorService all = Executors.newFixedThreadPool(streams);
            try {
                List<Future<Double>> f = new ArrayList<>();
                for (int i = 0; i < streams; i++) {
                    f.add(all.submit(() -> oneStream(size)));
                }
                double sum = 0;
                for (Future<Double> x : f) {
                    sum += x.get(300, TimeUnit.SECONDS);
                }
                return sum / streams;
            } catch (Exception e) {
                throw new IOException("raw loopback measurement failed", e);
            } finally {
                all.shutdownNow();
            }
        }

        static double oneStream(long size) throws IOException {
            try (ServerSocketChannel server = ServerSocketChannel.open().bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0))) {
                ExecutorService reader = Executors.newSingleThreadExecutor();
                try {
                    Future<Long> got = reader.submit(() -> {
                        try (SocketChannel ch = server.accept()) {
                            ByteBuffer b = ByteBuffer.allocateDirect(1 << 20);
                            long n = 0;
                            while (n < size) {
                                b.clear();
                                int k = ch.read(b);
                                if (k < 0) {
                                    break;
                                }
                                n += k;
                            }
                            return n;
                        }
                    });
                    long t0 = System.nanoTime();
                    try (SocketChannel ch = SocketChannel.open(server.getLocalAddress())) {
                        ByteBuffer b = ByteBuffer.allocateDirect(1 << 20);
                        for (long sent = 0; sent < size; ) {
                            b.clear().limit((int) Math.min(b.capacity(), size - sent));
                            sent += ch.write(b);
                        }
                    }
                    long n = got.get(120, TimeUnit.SECONDS);
                    return n / ((System.nanoTime() - t0) / 1e9) / 1e9;
                } catch (Exception e) {
                    throw new IOException("raw loopback measurement failed", e);
                } finally {
                    reader.shutdownNow();
                }
            }
        }

        static long parseBytes(String s) {
            String t = s.trim().toUpperCase(Locale.ROOT);
            long mult = 1;
            for (String[] u : new String[][] {{"GIB", "1073741824"}, {"MIB", "1048576"}, {"KIB", "1024"}, {"B", "1"}}) {
                if (t.endsWith(u[0])) {
                    mult = Long.parseLong(u[1]);
                    t = t.substring(0, t.length() - u[0].length()).trim();
                    break;
                }
            }
            try {
                long v = Long.parseLong(t) * mult;
                if (v < 4 || v % 4 != 0 || v > (1L << 31) * 4 - 4) {
                    throw new NumberFormatException();
                }
                return v;
            } catch (NumberFormatException e) {
                throw ConfigError.invalid("--bytes", Json.quote(s), "a multiple of 4 bytes up to 8 GiB, e.g. 256MiB");
            }
        }

        static List<InetSocketAddress> addresses(List<String> peers) {
            if (peers == null || peers.isEmpty()) {
                throw new ConfigError("--peers: missing (host:port per rank)");
            }
            return RingCollective.parsePeers(peers);
        }
    }
}
