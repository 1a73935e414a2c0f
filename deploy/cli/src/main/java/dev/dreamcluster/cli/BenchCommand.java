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

/** {@code dreamcluster bench}: measured numbers for docs/performance.md. */
@Command(name = "bench", mixinStandardHelpOptions = true, description = "Benchmarks that print numbers.",
        subcommands = {BenchCommand.CollectiveBench.class, StepBench.class, MemoryBench.class})
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

        @Option(names = "--frame", paramLabel = "SIZE", defaultValue = "1MiB",
                description = "the ring's frame payload (4KiB..64MiB; the trainer uses 1MiB)")
        String frame;

        @Option(names = "--rounds", paramLabel = "R", defaultValue = "1",
                description = "rounds (ring, then gloo with --peer); medians and min-max over them")
        int rounds;

        @Option(names = "--peer", description = "also run torch.distributed's gloo (Debian python3-torch) in each round")
        boolean peer;

        @Option(names = "--rank", hidden = true)
        Integer rank;

        @Option(names = "--peers", hidden = true, split = ",")
        List<String> peers;

        @Spec
        picocli.CommandLine.Model.CommandSpec spec;

        /** Rank 0's seconds per operation and where its time went, with the raw TCP baselines of the same round. */
        record RingRound(double[] seconds, RingCollective.Profile[] perOp, double raw, double rawRing) {}

        static final String[] OPS = {"all-reduce", "reduce-scatter", "all-gather"};

        @Override
        public Integer call() throws Exception {
            long size = parseBytes(bytes, "--bytes");
            if (workers < 1 || workers > 64) {
                throw ConfigError.invalid("--workers", Integer.toString(workers), "1..64 local processes");
            }
            if (iters < 1) {
                throw ConfigError.invalid("--iters", Integer.toString(iters), ">= 1");
            }
            if (rounds < 1 || rounds > 100) {
                throw ConfigError.invalid("--rounds", Integer.toString(rounds), "1..100");
            }
            long frameBytes = parseBytes(frame, "--frame");
            if (frameBytes < 4L * RingCollective.MIN_FRAME_FLOATS || frameBytes > 4L * RingCollective.MAX_FRAME_FLOATS) {
                throw ConfigError.invalid("--frame", Json.quote(frame), "4KiB..64MiB");
            }
            int floats = Math.toIntExact(size / 4);
            int frameFloats = (int) (frameBytes / 4);
            if (rank != null) {
                runRank(rank, addresses(peers), floats, frameFloats, null, System.getenv(SECRET_ENV));
                return 0;
            }
            GlooPeer gloo = peer ? GlooPeer.probe() : null;
            List<RingRound> ring = new ArrayList<>();
            List<double[]> glooRounds = new ArrayList<>();
            for (int r = 0; r < rounds; r++) {
                ring.add(ringRound(floats, frameFloats));
                if (gloo != null && gloo.available()) {
                    glooRounds.add(gloo.round(workers, floats, iters));
                }
            }
            report(ring, glooRounds, gloo, (long) floats * 4, frameBytes);
            return 0;
        }

        /** One round of the ring: ranks 1..n-1 as child JVMs, rank 0 here. */
        private RingRound ringRound(int floats, int frameFloats) throws Exception {
            String secret = RingCollective.newSecret();
            List<InetSocketAddress> addrs = new ArrayList<>();
            List<ServerSocketChannel> reserved = new ArrayList<>();
            for (int r = 0; r < workers; r++) {
                ServerSocketChannel s = ServerSocketChannel.open().bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
                reserved.add(s);
                addrs.add((InetSocketAddress) s.getLocalAddress());
            }
            String peerArg = String.join(",", addrs.stream().map(a -> a.getHostString() + ":" + a.getPort()).toList());
            List<Process> children = new ArrayList<>();
            RingRound result;
            try {
                for (int r = 1; r < workers; r++) {
                    reserved.get(r).close();
                    List<String> cmd = ChildJvm.command("-Xmx4g");
                    cmd.addAll(List.of(Main.class.getName(), "bench", "collective",
                            "--workers", Integer.toString(workers), "--bytes", bytes, "--iters", Integer.toString(iters),
                            "--frame", frame, "--rank", Integer.toString(r), "--peers", peerArg));
                    ProcessBuilder pb = ChildJvm.builder(cmd).inheritIO();
                    pb.environment().put(SECRET_ENV, secret);
                    children.add(pb.start());
                }
                result = runRank(0, addrs, floats, frameFloats, reserved.get(0), secret);
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
            return result;
        }

        private RingRound runRank(int r, List<InetSocketAddress> addrs, int floats, int frameFloats, ServerSocketChannel server,
                String secret) throws IOException {
            ServerSocketChannel s = server != null ? server : ServerSocketChannel.open().bind(addrs.get(r));
            float[] data = new float[floats];
            java.util.Arrays.fill(data, 1f);
            int n = addrs.size();
            try (RingCollective c = RingCollective.connect(BENCH_RUN_ID, RingCollective.decodeSecret(secret), r, addrs, s,
                    Duration.ofSeconds(60), frameFloats)) {
                int[] bounds = RingSchedule.evenBounds(floats, n);
                List<Runnable> ops = List.of(() -> c.allReduce(data, floats), () -> c.reduceScatter(data, bounds),
                        () -> c.allGather(data, bounds));
                double[] seconds = new double[ops.size()];
                RingCollective.Profile[] perOp = new RingCollective.Profile[ops.size()];
                for (int w = 0; w < 3; w++) {
                    ops.forEach(Runnable::run); // warm-ups: C2 compiles the frame loops of every operation first
                }
                for (int i = 0; i < ops.size(); i++) {
                    double total = 0;
                    RingCollective.Profile after = null;
                    for (int k = 0; k < iters; k++) {
                        c.barrier();
                        RingCollective.Profile p0 = c.profile();
                        long t0 = System.nanoTime();
                        ops.get(i).run();
                        total += (System.nanoTime() - t0) / 1e9;
                        RingCollective.Profile p1 = c.profile();
                        after = minus(p1, p0, after);
                    }
                    seconds[i] = total / iters;
                    perOp[i] = scale(after, 1.0 / iters);
                }
                c.barrier();
                if (r != 0) {
                    return null;
                }
                // measured while the other ranks wait in their close(): the machine is otherwise idle
                double raw = rawLoopback((long) floats * 4, 1);
                double rawRing = n > 1 ? rawLoopback((long) floats * 4, n) : raw;
                return new RingRound(seconds, perOp, raw, rawRing);
            }
        }

        /** {@code acc + (b - a)}, field by field ({@code acc} null: zero). */
        private static RingCollective.Profile minus(RingCollective.Profile b, RingCollective.Profile a, RingCollective.Profile acc) {
            return (acc == null ? RingCollective.Profile.ZERO : acc).plus(b.since(a));
        }

        private static RingCollective.Profile scale(RingCollective.Profile p, double f) {
            return new RingCollective.Profile(Math.round(p.waitNanos() * f), Math.round(p.reduceNanos() * f), Math.round(p.packNanos() * f),
                    Math.round(p.writeNanos() * f), Math.round(p.bytesReceived() * f));
        }

        /** nccl-tests' bus bandwidth factor: 2(n-1)/n for all-reduce, (n-1)/n for reduce-scatter and all-gather. */
        static double busFactor(int op, int n) {
            return (op == 0 ? 2.0 : 1.0) * (n - 1) / n;
        }

        private void report(List<RingRound> ring, List<double[]> gloo, GlooPeer peerInfo, long size, long frameBytes) {
            PrintWriter out = spec.commandLine().getOut();
            int n = workers;
            double gb = size / 1e9;
            out.printf(Locale.ROOT, "ring collective, %d processes on loopback, %s per rank (%d B), frames of %d KiB, %d iterations,"
                    + " %d round(s): median [min-max] over rounds%n", n, bytes, size, frameBytes >> 10, iters, ring.size());
            out.printf(Locale.ROOT, "%-15s %10s %12s %20s %22s %22s%s%n", "operation", "time (ms)", "algbw (GB/s)", "busbw (GB/s)",
                    "busbw/raw TCP", "busbw/raw ring-shape", gloo.isEmpty() ? "" : String.format(Locale.ROOT, " %20s %18s", "gloo busbw", "ring/gloo"));
            for (int op = 0; op < OPS.length; op++) {
                final int o = op;
                double f = busFactor(op, n);
                double[] t = ring.stream().mapToDouble(x -> x.seconds()[o]).toArray();
                double[] bus = ring.stream().mapToDouble(x -> gb / x.seconds()[o] * f).toArray();
                double[] perRaw = ring.stream().mapToDouble(x -> gb / x.seconds()[o] * f / x.raw()).toArray();
                double[] perRing = ring.stream().mapToDouble(x -> gb / x.seconds()[o] * f / x.rawRing()).toArray();
                String glooCols = "";
                if (!gloo.isEmpty()) {
                    int g = op == 0 ? 0 : op == 2 ? 1 : -1; // gloo in torch 1.13 has no reduce_scatter
                    if (g < 0) {
                        glooCols = String.format(Locale.ROOT, " %20s %18s", "(not in gloo)", "");
                    } else {
                        double[] gbus = gloo.stream().mapToDouble(x -> gb / x[g] * f).toArray();
                        double[] ratio = new double[Math.min(gbus.length, bus.length)];
                        for (int i = 0; i < ratio.length; i++) {
                            ratio[i] = bus[i] / gbus[i];
                        }
                        glooCols = String.format(Locale.ROOT, " %20s %18s", spread(gbus, "%.2f"), spread(ratio, "%.2fx"));
                    }
                }
                out.printf(Locale.ROOT, "%-15s %10.1f %12.2f %20s %22s %22s%s%n", OPS[op], median(t) * 1e3, gb / median(t),
                        spread(bus, "%.2f"), spread(perRaw, "%.2f"), spread(perRing, "%.2f"), glooCols);
            }
            out.printf(Locale.ROOT, "raw TCP loopback: one stream %s GB/s; %d streams at once (the ring's traffic shape) %s GB/s per stream%n",
                    spread(ring.stream().mapToDouble(RingRound::raw).toArray(), "%.2f"), n,
                    spread(ring.stream().mapToDouble(RingRound::rawRing).toArray(), "%.2f"));
            if (peerInfo != null && !peerInfo.available()) {
                out.println("gloo peer skipped: " + peerInfo.why());
            }
            out.println("where rank 0's time went, ms per operation (median round): receiving thread = wait in read + reduce/copy out;"
                    + " sending thread = pack into the direct buffer + write");
            out.printf(Locale.ROOT, "%-15s %10s %10s %10s %10s %10s%n", "operation", "total", "wait", "reduce", "pack", "write");
            for (int op = 0; op < OPS.length; op++) {
                final int o = op;
                RingRound mid = ring.stream().sorted(java.util.Comparator.comparingDouble(x -> x.seconds()[o])).toList().get(ring.size() / 2);
                RingCollective.Profile p = mid.perOp()[op];
                out.printf(Locale.ROOT, "%-15s %10.1f %10.1f %10.1f %10.1f %10.1f%n", OPS[op], mid.seconds()[op] * 1e3, p.waitNanos() / 1e6,
                        p.reduceNanos() / 1e6, p.packNanos() / 1e6, p.writeNanos() / 1e6);
            }
            double worst = Double.MAX_VALUE;
            for (int op = 0; op < OPS.length; op++) {
                final int o = op;
                worst = Math.min(worst, median(ring.stream().mapToDouble(x -> gb / x.seconds()[o] * busFactor(o, n) / x.rawRing()).toArray()));
            }
            out.printf(Locale.ROOT, "target busbw >= 0.7 of raw TCP in the ring's shape: %s (worst operation %.2f)%n",
                    worst >= 0.7 ? "met" : "missed", worst);
            out.flush();
        }

        static double median(double[] x) {
            return dev.dreamcluster.stats.Stats.median(x);
        }

        /** "median [min-max]" (just the value for one round). */
        static String spread(double[] x, String fmt) {
            double[] s = x.clone();
            java.util.Arrays.sort(s);
            String m = String.format(Locale.ROOT, fmt, median(s));
            return s.length == 1 ? m : m + " [" + String.format(Locale.ROOT, fmt, s[0]) + "-" + String.format(Locale.ROOT, fmt, s[s.length - 1]) + "]";
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

        static long parseBytes(String s, String flag) {
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
                throw ConfigError.invalid(flag, Json.quote(s), "a multiple of 4 bytes up to 8 GiB, e.g. 256MiB");
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
