package dev.dreamcluster.worker.node;

import akka.actor.typed.ActorRef;
import dev.dreamcluster.collective.Collective;
import dev.dreamcluster.collective.RingCollective;
import dev.dreamcluster.config.CliFlags;
import dev.dreamcluster.config.ConfigResolver;
import dev.dreamcluster.config.ResolvedTrainingConfig;
import dev.dreamcluster.model.DiffusersFolder;
import dev.dreamcluster.protocol.CoordinatorProtocol;
import dev.dreamcluster.protocol.RunPlan;
import dev.dreamcluster.safetensors.DType;
import dev.dreamcluster.worker.train.ComputeConfig;
import dev.dreamcluster.worker.train.StepResult;
import dev.dreamcluster.worker.train.TrainConfig;
import dev.dreamcluster.worker.train.Trainer;
import java.net.InetSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The one thread of a worker that owns DJL (grad mode is thread-local; one GradientCollector per
 * JVM), the Trainer and the ring. It reports every step to the coordinator and its end to both the
 * coordinator and the worker actor. {@link #abort} closes the ring, which fails the step in progress
 * here and, through the sockets, on every peer.
 */
final class ComputeThread extends Thread {
    private final RunPlan plan;
    private final int rank;
    private final ServerSocketChannel server;
    private final ActorRef<CoordinatorProtocol.Command> coordinator;
    private final ActorRef<Worker.Command> worker;
    private volatile Collective ring;
    private final WorkerCompute workerCompute;

    ComputeThread(RunPlan plan, int rank, ServerSocketChannel server, ActorRef<CoordinatorProtocol.Command> coordinator,
            ActorRef<Worker.Command> worker, WorkerCompute workerCompute) {
        super("dreamcluster-compute-" + rank);
        this.workerCompute = workerCompute;
        this.plan = plan;
        this.rank = rank;
        this.server = server;
        this.coordinator = coordinator;
        this.worker = worker;
        setDaemon(true);
    }

    void abort() {
        Collective r = ring;
        if (r != null) {
            r.close();
        }
        interrupt();
    }

    @Override
    public void run() {
        boolean ok = false;
        String message;
        try {
            Path trainJson = Path.of(plan.trainJson());
            Map<String, Object> overrides = new HashMap<>();
            overrides.put("max_steps", plan.maxSteps() > 0 ? plan.maxSteps() : null);
            overrides.put("out", plan.out());
            TrainConfig cfg = TrainConfig.load(trainJson, overrides);
            int layers = DiffusersFolder.read(cfg.model()).textEncoder().numHiddenLayers();
            ResolvedTrainingConfig opt = ConfigResolver.load(trainJson, CliFlags.NONE, layers);
            ComputeConfig compute = workerCompute.config(trainJson);
            try (Collective r = WorkerCompute.connect(plan, rank, server, compute); // the ring, or NCCL when the plan says so
                    Trainer t = new Trainer(cfg, opt, null, w -> System.err.println("rank " + rank + " warning: " + w), r, compute)) {
                ring = r;
                while (t.step() < t.totalSteps()) {
                    long t0 = System.nanoTime();
                    StepResult s = t.trainStep();
                    double secs = (System.nanoTime() - t0) / 1e9;
                    boolean last = t.step() == t.totalSteps();
                    // validation needs no collective: rank 0 runs it, the others wait at the next step's first collective
                    double val = rank == 0 && (last || (cfg.valEveryNSteps() > 0 && s.step() % cfg.valEveryNSteps() == 0))
                            ? t.validate() : Double.NaN;
                    double comm = t.lastCommSeconds();
                    double optim = t.lastOptimizerSeconds();
                    coordinator.tell(new CoordinatorProtocol.StepReported(plan.runId(), rank, s.step(), s.loss(), s.lrUnet(),
                            s.lrTextEncoder(), s.gradNorm(), s.samplesPerS(), secs - comm - optim, comm, optim, val));
                    if (cfg.saveEveryNSteps() > 0 && s.step() % cfg.saveEveryNSteps() == 0) {
                        t.checkpoint(cfg.out().resolve("checkpoints").resolve(String.format("step-%06d", s.step())));
                    }
                }
                t.checkpoint(cfg.out().resolve("checkpoints").resolve(String.format("step-%06d", t.step())));
                if (rank == 0) {
                    t.saveModel(cfg.out().resolve("final"), cfg.saveFullPrecision() ? DType.F32 : DType.F16);
                }
                r.barrier();
            }
            ok = true;
            message = "done";
        } catch (RuntimeException e) {
            message = e.getMessage() == null ? e.toString() : e.getMessage();
        }
        coordinator.tell(new CoordinatorProtocol.RunEnded(plan.runId(), rank, ok, message));
        worker.tell(new Worker.ComputeEnded(ok, message));
    }
}
