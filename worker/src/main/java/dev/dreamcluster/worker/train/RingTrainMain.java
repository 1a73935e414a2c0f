package dev.dreamcluster.worker.train;

import dev.dreamcluster.collective.Collective;
import dev.dreamcluster.collective.CollectiveException;
import dev.dreamcluster.collective.RingCollective;
import dev.dreamcluster.config.CliFlags;
import dev.dreamcluster.config.ConfigResolver;
import dev.dreamcluster.config.ResolvedTrainingConfig;
import dev.dreamcluster.model.DiffusersFolder;
import dev.dreamcluster.safetensors.DType;
import dev.dreamcluster.worker.sample.RunOutputs;
import java.net.InetSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * One rank of a multi-process training run whose peers are given on the command line:
 *
 * <pre>
 *   java ... RingTrainMain TRAIN_JSON RANK HOST:PORT,HOST:PORT,... STEPS OUT RUN_ID [SAVE_EVERY]
 * </pre>
 *
 * With SAVE_EVERY > 0 a checkpoint is committed to OUT/checkpoints every SAVE_EVERY steps. A failed
 * collective (a peer died or stalled) ends the process with status 3 and one {@code error:} line.
 *
 * Each process owns one DJL engine (one GradientCollector per JVM) and its ring socket; rank 0 saves
 * the final model (fp32) to OUT/final. The Akka runtime will start ranks the same way, with the
 * peer list and run id sent by the coordinator instead of argv.
 */
public final class RingTrainMain {
    private RingTrainMain() {}

    public static void main(String[] args) throws Exception {
        if (args.length != 6 && args.length != 7) {
            System.err.println("usage: RingTrainMain TRAIN_JSON RANK PEERS STEPS OUT RUN_ID [SAVE_EVERY]");
            System.exit(2);
        }
        int saveEvery = args.length == 7 ? Integer.parseInt(args[6]) : 0;
        Path trainJson = Path.of(args[0]);
        int rank = Integer.parseInt(args[1]);
        List<InetSocketAddress> peers = RingCollective.parsePeers(List.of(args[2].split(",")));
        int steps = Integer.parseInt(args[3]);
        Path out = Path.of(args[4]);
        long runId = Long.parseLong(args[5]);
        Map<String, Object> overrides = new HashMap<>();
        overrides.put("max_steps", steps);
        overrides.put("out", out.toAbsolutePath().toString());
        TrainConfig cfg = TrainConfig.load(trainJson, overrides);
        int layers = DiffusersFolder.read(cfg.model()).textEncoder().numHiddenLayers();
        ResolvedTrainingConfig opt = ConfigResolver.load(trainJson, CliFlags.NONE, layers);
        ServerSocketChannel server = ServerSocketChannel.open().bind(peers.get(rank));
        try (Collective ring = RingCollective.connect(runId, rank, peers, server, Duration.ofSeconds(30));
                Trainer t = new Trainer(cfg, opt, null, w -> System.err.println("rank " + rank + " warning: " + w), ring);
                RunOutputs outputs = RunOutputs.open(cfg, rank, t, w -> System.err.println("rank " + rank + " warning: " + w))) {
            for (int i = 0; i < steps; i++) {
                StepResult r = t.trainStep();
                if (rank == 0) {
                    System.out.printf("step %d loss %.6f grad_norm %.6f%n", r.step(), r.loss(), r.gradNorm());
                }
                outputs.afterStep(t, r);
                if (saveEvery > 0 && r.step() % saveEvery == 0) {
                    t.checkpoint(out.resolve("checkpoints").resolve(String.format("step-%06d", r.step())));
                }
            }
            if (rank == 0) {
                t.saveModel(out.resolve("final"), DType.F32);
            }
            outputs.finish(t);
            ring.barrier(); // nobody exits before rank 0 has saved
        } catch (CollectiveException e) {
            System.err.println("error: " + e.getMessage() + "; the last committed checkpoint is in " + out.resolve("checkpoints"));
            System.exit(3);
        }
        System.out.println("rank " + rank + " done");
    }
}
