package dev.dreamcluster.bench;

import java.util.List;
import java.util.Locale;

/**
 * {@code bin/bench scale}: an alpha-beta model of one ZeRO-1 training step from 8 to 1,024 GPUs, the
 * arithmetic behind docs/scale.md. Nothing here is measured: the constants are published figures or
 * stated assumptions (each named in docs/scale.md with its source and date); the arithmetic is checked
 * by {@code ScaleModelTest}.
 *
 * <p>Cost model (Hockney's alpha-beta): a collective of {@code s} steps, each moving {@code c} bytes per
 * rank over a link of latency alpha and bandwidth B, takes {@code s * (alpha + c / B)}. A ring
 * reduce-scatter or all-gather of {@code n} bytes over {@code p} ranks is {@code p - 1} steps of
 * {@code n / p} bytes; recursive halving / doubling is {@code ceil(log2 p)} steps moving the same
 * {@code (p - 1) / p * n} bytes in all. A ring's steps are paced by its slowest hop.
 *
 * <p>One ZeRO-1 step communicates: a reduce-scatter of the gradients ({@code gradBytes} per parameter),
 * an all-gather of the updated parameters ({@code paramBytes} per parameter), and an all-reduce of one
 * scalar (the gradient norm), which costs latency only. Nothing overlaps with compute (the worker issues
 * its collectives after the backward, one at a time), so step = compute + communication; the shard's
 * optimizer update (under 2 ms on a GPU at 8 ranks) is left out.
 *
 * <p>All methods are static and pure; no field is mutable.
 */
public final class ScaleModel {
    private ScaleModel() {}

    /** One kind of hop: per-step latency in seconds, bandwidth in bytes per second (what a ring step sees). */
    public record Link(String name, double alphaSeconds, double bytesPerSecond) {
        public Link {
            if (!(alphaSeconds >= 0) || !(bytesPerSecond > 0)) {
                throw new IllegalArgumentException("link " + name + ": alpha >= 0 and bandwidth > 0 needed");
            }
        }
    }

    /**
     * Nodes of {@code gpusPerNode} GPUs joined by {@code intra} (NVLink); between nodes {@code inter} is one
     * NIC and a node has {@code nicsPerNode} of them (8: one per GPU, rail-optimised; 1: a shared NIC).
     */
    public record Cluster(String name, int gpusPerNode, Link intra, Link inter, int nicsPerNode) {
        public Cluster {
            if (gpusPerNode < 1 || nicsPerNode < 1) {
                throw new IllegalArgumentException("cluster " + name + ": gpusPerNode and nicsPerNode >= 1 needed");
            }
        }
    }

    /**
     * What one step moves and computes: {@code params} trained parameters, bytes per gradient element in
     * the reduce-scatter and per parameter in the all-gather (4 today: the flat buffers are fp32), the
     * compute seconds of one step on one GPU and the images that step processes on that GPU.
     */
    public record Workload(String name, long params, int gradBytes, int paramBytes, double computeSeconds,
            int imagesPerGpu) {}

    /** A collective's (or a step's) communication seconds, split into the latency and the bandwidth term. */
    public record Comm(double latencySeconds, double bandwidthSeconds) {
        public static final Comm ZERO = new Comm(0, 0);

        public double seconds() {
            return latencySeconds + bandwidthSeconds;
        }

        public Comm plus(Comm o) {
            return new Comm(latencySeconds + o.latencySeconds, bandwidthSeconds + o.bandwidthSeconds);
        }
    }

    /** The inter-node schedule of the two-level collective. */
    public enum InterAlgo { RING, HALVING_DOUBLING }

    /** One row of the prediction: the step's communication and time, images per second per GPU. */
    public record Step(int gpus, Comm comm, double stepSeconds, double imagesPerSecondPerGpu) {}

    // ---- collectives --------------------------------------------------------------------------------

    /** Ring reduce-scatter (or all-gather: same cost) of {@code bytes} over {@code p} ranks: p-1 steps of bytes/p. */
    public static Comm ring(int p, double bytes, Link link) {
        if (p <= 1) {
            return Comm.ZERO;
        }
        return new Comm((p - 1) * link.alphaSeconds(), (p - 1) * (bytes / p) / link.bytesPerSecond());
    }

    /** Recursive halving (reduce-scatter) or doubling (all-gather): ceil(log2 p) steps, (p-1)/p of the bytes. */
    public static Comm halvingDoubling(int p, double bytes, Link link) {
        if (p <= 1) {
            return Comm.ZERO;
        }
        return new Comm(ceilLog2(p) * link.alphaSeconds(), (p - 1) * (bytes / p) / link.bytesPerSecond());
    }

    /** All-reduce of one scalar: latency only, 2(p-1) ring steps (or 2 ceil(log2 p) for a tree). */
    public static Comm scalarAllReduce(int p, Link link, boolean tree) {
        if (p <= 1) {
            return Comm.ZERO;
        }
        return new Comm((tree ? 2 * ceilLog2(p) : 2 * (p - 1)) * link.alphaSeconds(), 0);
    }

    static int ceilLog2(int p) {
        return p <= 1 ? 0 : 32 - Integer.numberOfLeadingZeros(p - 1);
    }

    // ---- one ZeRO-1 step ----------------------------------------------------------------------------

    /**
     * One flat ring over all {@code p} ranks (what the TCP ring does today; ranks node by node). Within
     * one node every hop is NVLink; across nodes each step waits for the hop that leaves the node, one NIC.
     */
    public static Comm flatStep(Cluster c, int p, Workload w) {
        Link hop = p <= c.gpusPerNode() ? c.intra() : c.inter();
        return ring(p, (double) w.params() * w.gradBytes(), hop)
                .plus(ring(p, (double) w.params() * w.paramBytes(), hop))
                .plus(scalarAllReduce(p, hop, false));
    }

    /**
     * Two levels: reduce-scatter within the node over g GPUs (each keeps n/g), then g independent
     * inter-node collectives over N = p/g nodes on n/g each (GPU i of every node with GPU i of the others),
     * sharing the node's NICs; the all-gather runs the same in reverse. With g = p it is the flat intra ring.
     */
    public static Comm twoLevelStep(Cluster c, int p, Workload w, InterAlgo algo) {
        int g = Math.min(c.gpusPerNode(), p);
        if (p % g != 0) {
            throw new IllegalArgumentException(p + " GPUs are not whole nodes of " + g);
        }
        int nodes = p / g;
        // the g concurrent inter-node collectives share the node's NICs: each gets min(1, nics/g) of one
        Link inter = new Link(c.inter().name() + " shared", c.inter().alphaSeconds(),
                c.inter().bytesPerSecond() * Math.min(1.0, (double) c.nicsPerNode() / g));
        Comm total = Comm.ZERO;
        for (int bytesPer : new int[] {w.gradBytes(), w.paramBytes()}) {
            double n = (double) w.params() * bytesPer;
            total = total.plus(ring(g, n, c.intra()));
            total = total.plus(algo == InterAlgo.RING ? ring(nodes, n / g, inter) : halvingDoubling(nodes, n / g, inter));
        }
        return total.plus(scalarAllReduce(g, c.intra(), false))
                .plus(scalarAllReduce(nodes, c.inter(), algo == InterAlgo.HALVING_DOUBLING));
    }

    /** A step: compute plus communication (no overlap), and the images per second one GPU gets. */
    public static Step step(int p, Workload w, Comm comm) {
        double s = w.computeSeconds() + comm.seconds();
        return new Step(p, comm, s, w.imagesPerGpu() / s);
    }

    /**
     * The smallest GPU count (whole nodes once past one node) at which the flat ring's latency term
     * exceeds {@code fraction} of the compute step; -1 if none up to {@code maxGpus}. Past this point
     * adding GPUs buys less per GPU: the latency term grows with p while the compute per GPU does not.
     */
    public static int flatLatencyCrossover(Cluster c, Workload w, double fraction, int maxGpus) {
        double limit = fraction * w.computeSeconds();
        for (int p = 2; p <= maxGpus; p++) {
            if (p > c.gpusPerNode() && p % c.gpusPerNode() != 0) {
                continue;
            }
            if (flatStep(c, p, w).latencySeconds() > limit) {
                return p;
            }
        }
        return -1;
    }

    // ---- checkpoints --------------------------------------------------------------------------------

    /**
     * Sharded write (each rank writes its 1/p): a node writes g/p of the state at the node's disk
     * bandwidth; the same time bounds a re-sharding read where each rank reads its slice of the new layout.
     */
    public static double shardedCheckpointSeconds(long params, double bytesPerParam, int p, int gpusPerNode,
            double diskBytesPerSecond) {
        double state = params * bytesPerParam;
        double perNode = p <= gpusPerNode ? state : state * gpusPerNode / p;
        return perNode / diskBytesPerSecond;
    }

    /**
     * Today's write: every rank's shard gathered to rank 0 ((p-1)/p of the state through rank 0's one link),
     * then rank 0 writes the whole state to its one disk.
     */
    public static double gatheredCheckpointSeconds(long params, double bytesPerParam, int p, Link rank0Link,
            double diskBytesPerSecond) {
        double state = params * bytesPerParam;
        double gather = p <= 1 ? 0 : (p - 1) * (state / p) / rank0Link.bytesPerSecond();
        return gather + state / diskBytesPerSecond;
    }

    // ---- control plane ------------------------------------------------------------------------------

    /** Messages per second into the coordinator: {@code perWorkerPerStep} per worker each step. */
    public static double coordinatorMessagesPerSecond(int workers, double perWorkerPerStep, double stepSeconds) {
        return workers * perWorkerPerStep / stepSeconds;
    }

    // ---- the published and assumed constants (docs/scale.md names each source) ---------------------

    static final double GB = 1e9;
    static final double US = 1e-6;

    /** NCCL tuning.cc ring/Simple per-hop latencies: NVLink 3.4 us, network 9.6 us. */
    static final Link NVLINK_H100 = new Link("NVLink H100", 3.4 * US, 370 * GB);
    static final Link NVLINK_A100 = new Link("NVLink A100", 3.4 * US, 230 * GB);
    /** 400 Gb/s = 50 GB/s line; 0.9 of line assumed (nccl-tests #119 saw 0.85-0.96 on HDR). */
    static final Link IB_NDR400 = new Link("IB NDR 400G", 9.6 * US, 0.9 * 50 * GB);
    static final Link IB_HDR200 = new Link("IB HDR 200G", 9.6 * US, 0.9 * 25 * GB);
    /** The project's TCP ring over Ethernet: 50 us per hop and 0.9 of line are assumptions. */
    static final Link ETH_100G = new Link("100 GbE TCP", 50 * US, 0.9 * 12.5 * GB);
    static final Link ETH_25G = new Link("25 GbE TCP", 50 * US, 0.9 * 3.125 * GB);

    static final Cluster A100_HDR = new Cluster("8x A100 + 8x HDR 200G", 8, NVLINK_A100, IB_HDR200, 8);
    static final Cluster H100_NDR = new Cluster("8x H100 + 8x NDR 400G", 8, NVLINK_H100, IB_NDR400, 8);
    static final Cluster H100_100G = new Cluster("8x H100 + 1x 100 GbE", 8, NVLINK_H100, ETH_100G, 1);
    static final Cluster H100_25G = new Cluster("8x H100 + 1x 25 GbE", 8, NVLINK_H100, ETH_25G, 1);

    static final long SD15_UNET = 859_520_964L;
    static final long SD15_TEXT_ENCODER = 123_060_480L;
    static final long SDXL_UNET = 2_567_000_000L;

    /** MosaicML's published SD2-base UNet throughput at 512 px on A100s (images/s in all, by GPU count). */
    static final int[][] MOSAIC_512 = {{8, 290}, {16, 585}, {32, 1195}, {64, 2340}, {128, 4590}};
    /** 290 images/s on 8 A100s: 36.25 per GPU, the compute rate used for every cluster. */
    static final double A100_IMAGES_PER_SECOND = 290.0 / 8;
    /** Mosaic's device_train_microbatch_size: 16 images per GPU per step. */
    static final int BATCH_PER_GPU = 16;

    static Workload sd15(String name, long params, int bytes) {
        return new Workload(name, params, bytes, bytes, BATCH_PER_GPU / A100_IMAGES_PER_SECOND, BATCH_PER_GPU);
    }

    static Double mosaicPerGpu(int p) {
        for (int[] row : MOSAIC_512) {
            if (row[0] == p) {
                return (double) row[1] / p;
            }
        }
        return null;
    }

    public static void main(String[] args) {
        List<Cluster> clusters = List.of(A100_HDR, H100_NDR, H100_100G, H100_25G);
        List<Workload> loads = List.of(
                sd15("SD1.5 UNet, fp32 grads/params", SD15_UNET, 4),
                sd15("SD1.5 UNet + text encoder, fp32", SD15_UNET + SD15_TEXT_ENCODER, 4),
                sd15("SD1.5 UNet, fp16 grads/params", SD15_UNET, 2));
        int[] sizes = {8, 64, 512, 1024};
        PrintFmt out = new PrintFmt();
        out.line("Predicted ZeRO-1 step, %d images/GPU/step, compute %.3f s (Mosaic's 36.25 img/s per A100, published)",
                BATCH_PER_GPU, BATCH_PER_GPU / A100_IMAGES_PER_SECOND);
        for (Workload w : loads) {
            out.line("");
            out.line("== %s (%,d params)", w.name(), w.params());
            out.line("%-24s %6s %12s %12s %12s %12s %12s %12s %10s", "cluster", "GPUs", "flat ms", "flat lat ms",
                    "2lvl ring ms", "2lvl h/d ms", "img/s flat", "img/s 2lvl", "Mosaic");
            for (Cluster c : clusters) {
                for (int p : sizes) {
                    Step flat = step(p, w, flatStep(c, p, w));
                    Step ring2 = step(p, w, twoLevelStep(c, p, w, InterAlgo.RING));
                    Step hd2 = step(p, w, twoLevelStep(c, p, w, InterAlgo.HALVING_DOUBLING));
                    Double m = mosaicPerGpu(p);
                    out.line("%-24s %6d %12.1f %12.2f %12.1f %12.1f %12.2f %12.2f %10s", c.name(), p,
                            flat.stepSeconds() * 1e3, flat.comm().latencySeconds() * 1e3, ring2.stepSeconds() * 1e3,
                            hd2.stepSeconds() * 1e3, flat.imagesPerSecondPerGpu(),
                            Math.max(ring2.imagesPerSecondPerGpu(), hd2.imagesPerSecondPerGpu()),
                            m == null ? "-" : String.format(Locale.ROOT, "%.2f", m));
                }
            }
        }
        Workload w = loads.get(0);
        out.line("");
        out.line("Flat ring: smallest GPU count whose latency term exceeds 10%% of the compute step (%s)", w.name());
        for (Cluster c : clusters) {
            int x = flatLatencyCrossover(c, w, 0.10, 1 << 16);
            out.line("  %-24s %s", c.name(), x < 0 ? "none up to 65,536" : String.format(Locale.ROOT, "%,d GPUs", x));
        }
        out.line("");
        out.line("Checkpoint write, disk 1.5 GB/s per node (assumed); today = gather to rank 0 over its NIC + one disk");
        out.line("%-28s %6s %6s %12s %12s", "state", "B/par", "GPUs", "sharded s", "today s");
        long[] models = {SD15_UNET + SD15_TEXT_ENCODER, SDXL_UNET};
        String[] names = {"SD1.5 UNet + text encoder", "SDXL UNet"};
        for (int i = 0; i < models.length; i++) {
            for (double bpp : new double[] {12, 6}) {
                for (int p : new int[] {8, 64, 512}) {
                    out.line("%-28s %6.0f %6d %12.2f %12.1f", names[i], bpp, p,
                            shardedCheckpointSeconds(models[i], bpp, p, 8, 1.5 * GB),
                            gatheredCheckpointSeconds(models[i], bpp, p, p <= 8 ? NVLINK_H100 : IB_NDR400, 1.5 * GB));
                }
            }
        }
        out.line("");
        out.line("Coordinator: 1 step report per worker per step (the data never crosses Akka)");
        for (int p : new int[] {8, 64, 512, 1024}) {
            Step s = step(p, w, twoLevelStep(H100_NDR, p, w, InterAlgo.RING));
            out.line("  %5d workers, step %.3f s: %,.0f messages/s into the coordinator", p, s.stepSeconds(),
                    coordinatorMessagesPerSecond(p, 1, s.stepSeconds()));
        }
    }

    /** Locale-independent printing (decimal points, not commas, whatever the JVM's locale). */
    private static final class PrintFmt {
        void line(String fmt, Object... args) {
            System.out.println(String.format(Locale.ROOT, fmt, args));
        }
    }
}
