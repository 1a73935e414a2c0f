package dev.dreamcluster.cli;

import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.config.RunConfig;
import dev.dreamcluster.io.MetricsLog;
import dev.dreamcluster.io.StepMetrics;
import dev.dreamcluster.worker.train.LocalProgress;
import dev.dreamcluster.worker.train.TrainLoop;
import dev.dreamcluster.worker.train.ComputeConfig;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code dreamcluster train}: fine-tune a diffusers model on an EveryDream dataset, in this process or
 * on an embedded local cluster ({@code --workers N}). The same flags mean the same in both.
 */
@Command(name = "train", mixinStandardHelpOptions = true,
        description = "Train (EveryDream2 train.json + optimizer.json). Writes metrics.jsonl, checkpoints/ and final/ under out.")
final class TrainCommand implements Callable<Integer> {
    @Mixin
    RunFlags run;

    @Mixin
    DeviceOptions device = new DeviceOptions();

    @Option(names = "--workers", paramLabel = "N", defaultValue = "1",
            description = "1: train in this process; N > 1: an embedded cluster (coordinator here, N local worker JVMs)")
    int workers;

    @Option(names = "--pin_workers", description = "pin local worker r to core r (taskset; for benchmarks of uneven workers)")
    boolean pinWorkers;

    @Option(names = "--coordinator_bind", paramLabel = "HOST:PORT", defaultValue = "127.0.0.1:0",
            description = "cluster address of the embedded coordinator (with --workers > 1), for a monitor's --join")
    String coordinatorBind;

    @Option(names = "--http", paramLabel = "HOST:PORT", defaultValue = "127.0.0.1:0",
            description = "monitoring HTTP server of the embedded coordinator (with --workers > 1; port 0: any free port)")
    String http;

    @Option(names = "--keys", paramLabel = "DIR",
            description = "cluster keys of the embedded cluster (with --workers > 1; default: a throwaway CA made for this run)")
    Path keys;

    @Option(names = "--preemption_grace", paramLabel = "S", defaultValue = "25",
            description = "with --workers > 1: passed to each local worker (SIGTERM to a worker: seconds it stays while the run"
                    + " commits a checkpoint after the step in flight; 0: it exits at once)")
    int preemptionGrace;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        if (workers < 1 || workers > 64) {
            throw ConfigError.invalid("--workers", Integer.toString(workers), "1..64 local worker processes");
        }
        if (preemptionGrace < 0 || preemptionGrace > WorkerCommand.MAX_GRACE) {
            throw ConfigError.invalid("--preemption_grace", Integer.toString(preemptionGrace), "0 (exit at once) or 1.."
                    + WorkerCommand.MAX_GRACE + " seconds");
        }
        Nodes.HostPort bind = Nodes.hostPort(coordinatorBind, "--coordinator_bind");
        device.apply(); // before DJL loads: a GPU needs the CUDA libtorch
        device.capacities(workers); // a bad --capacity: one line before any worker starts
        RunConfig cfg = run.resolve();
        try (RunFolder folder = run.claim(cfg, spec.commandLine().getErr())) {
            return train(cfg, bind);
        }
    }

    private int train(RunConfig cfg, Nodes.HostPort bind) throws Exception {
        for (String w : cfg.optimizer().warnings()) {
            spec.commandLine().getErr().println("warning: " + w);
        }
        spec.commandLine().getErr().flush();
        if (workers > 1) {
            Nodes.HostPort h = Nodes.hostPort(http, "--http");
            ComputeConfig compute = ComputeConfig.fromRun(cfg.compute(), device.overrides());
            return new EmbeddedCluster(cfg, run.coordinatorSettings(cfg, workers, compute.collective()), workers, bind,
                    new dev.dreamcluster.monitoring.MonitoringSettings(h.host(), h.port(), cfg.train().out()), keys).withDevice(device).withPinning(pinWorkers)
                    .withPreemptionGrace(preemptionGrace)
                    .withResumeLine(end -> ResumeLine.of("train", spec.commandLine().getParseResult().originalArgs(), end))
                    .run(spec.commandLine().getOut(), spec.commandLine().getErr());
        }
        StepMetrics last;
        try (LocalProgress progress = new LocalProgress(new MetricsLog(cfg.train().out()), System.err, cfg.train().logStep())) {
            last = new TrainLoop(cfg, run.resume, null, progress, w -> System.err.println("warning: " + w),
                    device.compute(cfg.compute())).run();
        }
        spec.commandLine().getOut().printf("done: %d steps, last loss %.4f, val_loss %.4f; model in %s%n", last == null ? 0 : last.step(),
                last == null ? Double.NaN : last.loss(), last == null ? Double.NaN : last.valLoss(), cfg.train().out().resolve("final"));
        spec.commandLine().getOut().flush();
        return 0;
    }
}
