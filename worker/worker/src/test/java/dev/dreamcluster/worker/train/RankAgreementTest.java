package dev.dreamcluster.worker.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dreamcluster.collective.Collective;
import dev.dreamcluster.collective.RingCollective;
import dev.dreamcluster.config.ConfigError;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** Ranks holding different seeds (seed -1 drawn per process) all fail before training; equal seeds pass. */
class RankAgreementTest {
    static List<String> run(long seed0, long seed1) throws Exception {
        return run(seed0, seed1, false);
    }

    /** Two ring ranks in threads holding {@code seed0} and {@code seed1} (or those as weight CRCs). */
    static List<String> run(long seed0, long seed1, boolean weights) throws Exception {
        List<ServerSocketChannel> servers = new ArrayList<>();
        List<InetSocketAddress> peers = new ArrayList<>();
        for (int r = 0; r < 2; r++) {
            ServerSocketChannel s = ServerSocketChannel.open().bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
            servers.add(s);
            peers.add((InetSocketAddress) s.getLocalAddress());
        }
        byte[] secret = RingCollective.decodeSecret(RingCollective.newSecret());
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try {
            List<Future<String>> f = new ArrayList<>();
            for (int r = 0; r < 2; r++) {
                int rank = r;
                f.add(pool.submit(() -> {
                    try (Collective c = RingCollective.connect(77, secret, rank, peers, servers.get(rank), Duration.ofSeconds(20))) {
                        if (weights) {
                            RankAgreement.checkWeights(c, rank == 0 ? seed0 : seed1, 7);
                        } else {
                            RankAgreement.check(c, "seed", rank == 0 ? seed0 : seed1);
                        }
                        return "ok";
                    } catch (ConfigError | dev.dreamcluster.run.TrainingHalted e) {
                        return e.getMessage();
                    }
                }));
            }
            List<String> out = new ArrayList<>();
            for (Future<String> x : f) {
                out.add(x.get(60, TimeUnit.SECONDS));
            }
            return out;
        } finally {
            pool.shutdownNow();
        }
    }

    /** Ranks whose weights differ (one CRC-32 each) halt together at the check; equal weights pass. */
    @Test
    void divergedWeightsHaltEveryRank() throws Exception {
        assertEquals(List.of("ok", "ok"), run(0xCAFEBABEL, 0xCAFEBABEL, true));
        for (String m : run(0xCAFEBABEL, 0xCAFEBABFL, true)) {
            assertTrue(m.startsWith("step 7: the ranks' weights diverged: rank 1's parameters differ from rank 0's"), m);
        }
    }

    @Test
    void differentSeedsFailOnEveryRank() throws Exception {
        assertEquals(List.of("ok", "ok"), run(123456789012L, 123456789012L));
        List<String> bad = run(5, 5 + (1L << 40));
        for (String m : bad) {
            assertTrue(m.startsWith("seed: the workers disagree"), m);
        }
    }
}
