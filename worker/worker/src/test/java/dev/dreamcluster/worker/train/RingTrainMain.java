package dev.dreamcluster.worker.train;

import dev.dreamcluster.collective.Collective;
import dev.dreamcluster.collective.CollectiveException;
import dev.dreamcluster.collective.RingCollective;
import dev.dreamcluster.config.CliFlags;
import dev.dreamcluster.config.ConfigResolver;
import dev.dreamcluster.config.RunConfig;
import dev.dreamcluster.config.TrainConfig;
import dev.dreamcluster.model.DiffusersFolder;
import dev.dreamcluster.worker.train.ckpt.TrainerState;
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
 *   java ... RingTrainMain TRAIN_JSON RANK HOST:PORT,HOST:PORT,... STEPS OUT RUN_ID [SAVE_EVERY [RESUME]]
 * </pre>
 *
 * A {@code {rank}} in OUT gives each rank its own folder (nodes without a shared file system); RESUME
 * is a checkpoint folder to continue from, STEPS then counts the steps of this process.
 *
 * A failed collective (a peer died or stalled) ends the process with status 3 and one {@code error:}
 * line naming the checkpoints folder.
 */
public final class RingTrainMain {
    /** The run secret (base64, as {@link RingCollective#newSecret}) comes in the environment, not argv, which every user can read. */
    public static final String SECRET_ENV = "DREAMCLUSTER_RING_SECRET";

    private RingTrainMain() {}

    /** This rank's --capacity from DREAMCLUSTER_CAPACITIES (comma-separated, one per rank; "auto"), or 0. */
    static double capacity(int rank) {
        String list = System.getenv("DREAMCLUSTER_CAPACITIES");
        if (list == null) {
            return 0;
        }
        return list.equals("auto") ? ComputeConfig.MEASURE : Double.parseDouble(list.split(",")[rank]);
    }

    public static void main(String[] args) throws Exception {
        int saveEvery = args.length >= 7 ? Integer.parseInt(args[6]) : 0;
        Path resume = args.length == 8 && !args[7].isEmpty() ? Path.of(args[7]) : null;
        Path trainJson = Path.of(args[0]);
        int rank = Integer.parseInt(args[1]);
        List<InetSocketAddress> peers = RingCollective.parsePeers(List.of(args[2].split(",")));
        Path out = Path.of(args[4].replace("{rank}", args[1])).toAbsolutePath();
        Map<String, Object> overrides = new HashMap<>();
        overrides.put("max_steps", Integer.parseInt(args[3]) + (resume == null ? 0 : TrainerState.read(resume).step()));
        overrides.put("out", out.toString());
        overrides.put("save_every_n_steps", saveEvery);
        overrides.put("save_full_precision", true); // the equivalence tests compare final weights in fp32
        TrainConfig cfg = TrainConfig.load(trainJson, overrides);
        int layers = DiffusersFolder.read(cfg.model()).textEncoder().numHiddenLayers();
        RunConfig run = new RunConfig(cfg, ConfigResolver.load(trainJson, CliFlags.NONE, layers));
        ServerSocketChannel server = ServerSocketChannel.open().bind(peers.get(rank));
        if (System.getenv(SECRET_ENV) == null) {
            System.err.println("error: " + SECRET_ENV + " is not set (every rank needs the same run secret, base64 of 32 bytes)");
            System.exit(2);
        }
        byte[] secret = RingCollective.decodeSecret(System.getenv(SECRET_ENV));
        try (Collective ring = RingCollective.connect(Long.parseLong(args[5]), secret, rank, peers, server, Duration.ofSeconds(30))) {
            new TrainLoop(run, resume, ring, (m, total) -> {
                if (rank == 0 && m.step() > 0) {
                    System.out.printf("step %d loss %.6f grad_norm %.6f%n", m.step(), m.loss(), m.gradNorm());
                }
                if (rank == 0 && !Double.isNaN(m.valLoss())) {
                    System.out.printf("step %d val_loss %.9f%n", m.step(), m.valLoss());
                }
            }, w -> System.err.println("rank " + rank + " warning: " + w),
                    // the harness is this process's command line: DREAMCLUSTER_OVERLAP=off is its --overlap off
                    ComputeConfig.CPU_FP32.withNodeSettings(0, !"off".equalsIgnoreCase(System.getenv("DREAMCLUSTER_OVERLAP")))
                            .withCapacity(capacity(rank))
                            .withStateOnDevice(System.getenv("DREAMCLUSTER_STATE_ON") == null ? null
                                    : "device".equals(System.getenv("DREAMCLUSTER_STATE_ON")))).run();
        } catch (CollectiveException e) {
            System.err.println("error: rank " + rank + ": " + e.getMessage() + "; the last committed checkpoint is in "
                    + out.resolve("checkpoints"));
            System.exit(3);
        }
        System.out.println("rank " + rank + " done");
    }
}
