package dev.dreamcluster.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dreamcluster.bench.ScaleModel.Cluster;
import dev.dreamcluster.bench.ScaleModel.Comm;
import dev.dreamcluster.bench.ScaleModel.InterAlgo;
import dev.dreamcluster.bench.ScaleModel.Link;
import dev.dreamcluster.bench.ScaleModel.Workload;
import org.junit.jupiter.api.Test;

/** The scale model's arithmetic against values computed by hand (the comments show the sums). */
class ScaleModelTest {
    private static final double EPS = 1e-12;
    // round numbers: 1 us / 100 GB/s inside a node, 10 us / 10 GB/s per NIC between nodes
    private static final Link INTRA = new Link("intra", 1e-6, 100e9);
    private static final Link INTER = new Link("inter", 1e-5, 10e9);
    private static final Cluster RAILS = new Cluster("8 GPUs, 8 NICs", 8, INTRA, INTER, 8);
    private static final Cluster ONE_NIC = new Cluster("8 GPUs, 1 NIC", 8, INTRA, INTER, 1);
    /** 1e9 parameters at 1 byte each way: n = 1e9 bytes per collective. */
    private static final Workload GIGABYTE = new Workload("1 GB", 1_000_000_000L, 1, 1, 1.0, 16);

    @Test
    void oneRankShouldCommunicateNothing() {
        assertEquals(Comm.ZERO, ScaleModel.ring(1, 1e9, INTER));
        assertEquals(Comm.ZERO, ScaleModel.halvingDoubling(1, 1e9, INTER));
        assertEquals(0.0, ScaleModel.flatStep(RAILS, 1, GIGABYTE).seconds());
        assertEquals(0.0, ScaleModel.twoLevelStep(RAILS, 1, GIGABYTE, InterAlgo.RING).seconds());
    }

    @Test
    void twoRanksShouldTakeOneStepOfHalfTheBytes() {
        Comm c = ScaleModel.ring(2, 1e9, INTER);
        assertEquals(1e-5, c.latencySeconds(), EPS); // 1 step * alpha
        assertEquals(0.05, c.bandwidthSeconds(), EPS); // 0.5e9 B / 10e9 B/s
    }

    @Test
    void halvingDoublingShouldTakeLog2StepsAndTheRingsBytes() {
        Comm c = ScaleModel.halvingDoubling(8, 8e9, INTER);
        assertEquals(3e-5, c.latencySeconds(), EPS); // log2 8 = 3 steps
        assertEquals(0.7, c.bandwidthSeconds(), EPS); // 7/8 * 8e9 / 10e9
        assertEquals(ScaleModel.ring(8, 8e9, INTER).bandwidthSeconds(), c.bandwidthSeconds(), EPS);
        assertEquals(0, ScaleModel.ceilLog2(1));
        assertEquals(1, ScaleModel.ceilLog2(2));
        assertEquals(2, ScaleModel.ceilLog2(3));
        assertEquals(3, ScaleModel.ceilLog2(8));
        assertEquals(4, ScaleModel.ceilLog2(9));
        assertEquals(10, ScaleModel.ceilLog2(1024));
    }

    @Test
    void twoLevelWithOneNodeShouldEqualTheFlatIntraRing() {
        for (int p : new int[] {2, 4, 8}) {
            Cluster c = new Cluster("one node", p, INTRA, INTER, 1);
            Comm flat = ScaleModel.flatStep(c, p, GIGABYTE);
            for (InterAlgo a : InterAlgo.values()) {
                Comm two = ScaleModel.twoLevelStep(c, p, GIGABYTE, a);
                assertEquals(flat.latencySeconds(), two.latencySeconds(), EPS);
                assertEquals(flat.bandwidthSeconds(), two.bandwidthSeconds(), EPS);
            }
        }
    }

    @Test
    void flatRingOverFourNodesShouldMatchTheHandSum() {
        // p = 32, every step paced by the NIC hop: RS + AG = 2 * 31 * (alpha + 1e9/32 / 10e9), norm 2 * 31 * alpha
        Comm c = ScaleModel.flatStep(RAILS, 32, GIGABYTE);
        assertEquals(2 * 31 * 1e-5 + 2 * 31 * 1e-5, c.latencySeconds(), EPS); // 1.24e-3
        assertEquals(2 * 31 * (1e9 / 32) / 10e9, c.bandwidthSeconds(), EPS); // 0.19375
    }

    @Test
    void twoLevelOverFourNodesShouldMatchTheHandSum() {
        // intra ring over 8 on 1e9: 7 us, 7 * 1.25e8 / 100e9 = 8.75 ms; inter ring over 4 on 1.25e8: 30 us,
        // 3 * 3.125e7 / 10e9 = 9.375 ms; twice (RS and AG); norm: 2*7*1 us + 2*3*10 us = 74 us
        Comm c = ScaleModel.twoLevelStep(RAILS, 32, GIGABYTE, InterAlgo.RING);
        assertEquals(2 * (7e-6 + 3e-5) + 7.4e-5, c.latencySeconds(), EPS);
        assertEquals(2 * (8.75e-3 + 9.375e-3), c.bandwidthSeconds(), EPS);
        // one NIC shared by the 8 concurrent inter-node rings: 1.25 GB/s each, 3 * 3.125e7 / 1.25e9 = 75 ms
        Comm shared = ScaleModel.twoLevelStep(ONE_NIC, 32, GIGABYTE, InterAlgo.RING);
        assertEquals(2 * (8.75e-3 + 0.075), shared.bandwidthSeconds(), EPS);
        // halving/doubling over 4 nodes: log2 4 = 2 steps instead of 3, and 2 * 2 for the norm instead of 2 * 3
        Comm hd = ScaleModel.twoLevelStep(RAILS, 32, GIGABYTE, InterAlgo.HALVING_DOUBLING);
        assertEquals(2 * (7e-6 + 2e-5) + 1.4e-5 + 4e-5, hd.latencySeconds(), EPS);
        assertEquals(c.bandwidthSeconds(), hd.bandwidthSeconds(), EPS);
    }

    @Test
    void costsShouldGrowWithRanksAndTwoLevelShouldCutTheLatency() {
        double lastFlatLatency = 0;
        for (int p = 16; p <= 1024; p *= 2) {
            Comm flat = ScaleModel.flatStep(RAILS, p, GIGABYTE);
            assertTrue(flat.latencySeconds() > lastFlatLatency, "flat latency grows at " + p);
            lastFlatLatency = flat.latencySeconds();
            for (Cluster c : new Cluster[] {RAILS, ONE_NIC}) {
                for (InterAlgo a : InterAlgo.values()) {
                    Comm two = ScaleModel.twoLevelStep(c, p, GIGABYTE, a);
                    Comm cFlat = ScaleModel.flatStep(c, p, GIGABYTE);
                    assertTrue(two.latencySeconds() < cFlat.latencySeconds(), c.name() + " " + a + " at " + p);
                    if (c == RAILS) { // with a NIC per GPU the g inter-node rings run side by side: g times the bandwidth
                        assertTrue(two.seconds() < cFlat.seconds(), c.name() + " " + a + " at " + p);
                    }
                }
            }
        }
        // the ring's bandwidth term approaches 2 n / B from below as p grows
        assertTrue(ScaleModel.flatStep(RAILS, 1024, GIGABYTE).bandwidthSeconds() < 2 * 1e9 / 10e9);
        // one shared NIC: the network bytes per node are the same both ways, so at 128 GPUs the two-level
        // schedule's intra-node phases (not pipelined in this model) cost more than its saved latency
        assertTrue(ScaleModel.twoLevelStep(ONE_NIC, 128, GIGABYTE, InterAlgo.RING).seconds()
                > ScaleModel.flatStep(ONE_NIC, 128, GIGABYTE).seconds());
    }

    @Test
    void crossoverShouldBeWhereTheHandSumSaysSo() {
        // flat latency = 4 (p-1) alpha = 4 (p-1) 1e-4 > 0.101 * 1.0 s  <=>  p - 1 > 252.5  <=>  p >= 254
        Link slow = new Link("slow", 1e-4, 1e9);
        Workload w = new Workload("w", 1_000_000L, 4, 4, 1.0, 16);
        assertEquals(254, ScaleModel.flatLatencyCrossover(new Cluster("1 GPU/node", 1, slow, slow, 1), w, 0.101, 4096));
        // whole nodes of 8 only: the first multiple of 8 at or above 254
        assertEquals(256, ScaleModel.flatLatencyCrossover(new Cluster("8 GPU/node", 8, INTRA, slow, 8), w, 0.101, 4096));
        assertEquals(-1, ScaleModel.flatLatencyCrossover(new Cluster("1 GPU/node", 1, slow, slow, 1), w, 0.101, 200));
    }

    @Test
    void checkpointTimesShouldMatchTheHandSums() {
        // SD1.5 UNet + text encoder, 12 B/param, 64 GPUs on 8 nodes: a node writes 1/8 at 1.5 GB/s
        long sd15 = ScaleModel.SD15_UNET + ScaleModel.SD15_TEXT_ENCODER;
        assertEquals(982_581_444L, sd15);
        assertEquals(982_581_444.0 * 12 / 8 / 1.5e9,
                ScaleModel.shardedCheckpointSeconds(sd15, 12, 64, 8, 1.5e9), 1e-9);
        // one node: the whole state through one disk
        assertEquals(12e9 / 1.5e9, ScaleModel.shardedCheckpointSeconds(1_000_000_000L, 12, 8, 8, 1.5e9), 1e-9);
        // gathered, p = 2: half of 12 GB over 10 GB/s, then 12 GB at 1.5 GB/s = 0.6 + 8
        assertEquals(8.6, ScaleModel.gatheredCheckpointSeconds(1_000_000_000L, 12, 2, INTER, 1.5e9), 1e-9);
    }

    @Test
    void stepAndControlPlaneShouldMatchTheHandSums() {
        ScaleModel.Step s = ScaleModel.step(8, GIGABYTE, new Comm(0.1, 0.9));
        assertEquals(2.0, s.stepSeconds(), EPS);
        assertEquals(8.0, s.imagesPerSecondPerGpu(), EPS);
        assertEquals(2048.0, ScaleModel.coordinatorMessagesPerSecond(1024, 1, 0.5), EPS);
    }

    @Test
    void partialNodesAndBadLinksShouldBeRefused() {
        assertThrows(IllegalArgumentException.class, () -> ScaleModel.twoLevelStep(RAILS, 12, GIGABYTE, InterAlgo.RING));
        assertThrows(IllegalArgumentException.class, () -> new Link("x", 1e-6, 0));
        assertThrows(IllegalArgumentException.class, () -> new Cluster("x", 0, INTRA, INTER, 1));
    }
}
