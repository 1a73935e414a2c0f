package dev.dreamcluster.worker.train;

import dev.dreamcluster.collective.Collective;
import dev.dreamcluster.collective.CollectiveException;
import dev.dreamcluster.collective.RingCollective;
import dev.dreamcluster.config.CliFlags;
import dev.dreamcluster.config.ConfigResolver;
import dev.dreamcluster.config.RunConfig;
import dev.dreamcluster.config.TrainConfig;
import dev.dreamcluster.model.DiffusersFolder;
import java.net.InetSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Test harness: one rank of a multi-process run whose peers are given on the command line, running
 * the real {@link TrainLoop} over the ring without the Akka control plane:
 *
 * <pre>
 *   java ... RingTrainMain TRAIN_JSON RANK HOST:PORT,HOST:PORT,... STEPS OUT RUN_ID [SAVE_EVERY]
 * </pre>
 *
 * A failed collective (a peer died or stalled) ends the process with status 3 and one {@code error:}
 * line naming the checkpoints folder.
 */
public final class RingTrainMain {
    private RingTrainMain() {}

    public static void main(String[] args) throws Exception {
        int saveEvery = args.length == 7 ? Integer.parseInt(args[6]) : 0;
        Path trainJson = Path.of(args[0]);
        int rank = Integer.parseInt(args[1]);
        List<InetSocketAddress> peers = RingCollective.parsePeers(List.of(args[2].split(",")));
        Path out = Path.of(args[4]).toAbsolutePath();
        Map<String, Object> overrides = new HashMap<>();
        overrides.put("max_steps", Integer.parseInt(args[3]));
        overrides.put("out", out.toString());
        overrides.put("save_every_n_steps", saveEvery);
        overrides.put("save_full_precision", true); // the equivalence tests compare final weights in fp32
        TrainConfig cfg = TrainConfig.load(trainJson, overrides);
        int layers = DiffusersFolder.read(cfg.model()).textEncoder().numHiddenLayers();
        RunConfig run = new RunConfig(cfg, ConfigResolver.load(trainJson, CliFlags.NONE, layers));
        ServerSocketChannel server = ServerSocketChannel.open().bind(peers.get(rank));
        try (Collective ring = RingCollective.connect(Long.parseLong(args[5]), rank, peers, server, Duration.ofSeconds(30))) {
            new TrainLoop(run, null, ring, (m, total) -> {
                if (rank == 0 && m.step() > 0) {
                    System.out.printf("step %d loss %.6f grad_norm %.6f%n", m.step(), m.loss(), m.gradNorm());
                }
            }, w -> System.err.println("rank " + rank + " warning: " + w)).run();
        } catch (CollectiveException e) {
            System.err.println("error: rank " + rank + ": " + e.getMessage() + "; the last committed checkpoint is in "
                    + out.resolve("checkpoints"));
            System.exit(3);
        }
        System.out.println("rank " + rank + " done");
    }
}
