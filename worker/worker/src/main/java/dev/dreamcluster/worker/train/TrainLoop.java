package dev.dreamcluster.worker.train;

import dev.dreamcluster.collective.Collective;
import dev.dreamcluster.config.RunConfig;
import dev.dreamcluster.config.TrainConfig;
import dev.dreamcluster.io.AtomicFiles;
import dev.dreamcluster.io.StepMetrics;
import dev.dreamcluster.protocol.RunControl;
import dev.dreamcluster.safetensors.DType;
import dev.dreamcluster.worker.sample.RunOutputs;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Consumer;

/**
 * The one training loop, for a single process ({@code collective == null}) and for every rank of a
 * cluster run: the starting validation, the steps, validation on rank 0 at its cadence, checkpoints
 * (every N steps, every N epochs, every N minutes as rank 0's clock says, and at the end) and the
 * final model, written by rank 0. Where the numbers of each step go is the {@link StepListener}'s
 * business: metrics.jsonl and a progress line in one process, the coordinator in a cluster.
 */
public final class TrainLoop {
    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(TrainLoop.class);

    /** Receives each step's metrics (and step 0: the starting val_loss) on the loop's thread. */
    public interface StepListener {
        void stepCompleted(StepMetrics metrics, int totalSteps);

        /** Rank 0: the checkpoint of {@code step} is complete under its real name (a restart point). */
        default void checkpointCommitted(int step, int totalSteps, Path dir) {}

        /**
         * Whether this rank asks the run to stop at this step boundary (its node is leaving): read once
         * per step, on the loop's thread, and agreed on by every rank ({@link #boundary}).
         */
        default boolean stopRequested() {
            return false;
        }

        /** How many users' control requests this rank has received in this generation (none in one process). */
        default int controlsReceived() {
            return 0;
        }

        /** The {@code index}-th control request of this generation ({@code index < controlsReceived()}). */
        default Control control(int index) {
            throw new IndexOutOfBoundsException("no control request " + index);
        }

        /**
         * While paused: returns when more than {@code received} requests are here, this node is leaving,
         * the generation is aborted, or {@code PAUSE_POLL} has passed.
         */
        default void awaitControl(int received) throws InterruptedException {
            Thread.sleep(PAUSE_POLL.toMillis());
        }

        /** Rank 0: every rank applied {@code c} after {@code step}; {@code detail} says what it did. */
        default void controlApplied(Control c, int step, String detail) {}

        /** The run was paused when this generation was planned (the same on every rank): no step before a resume. */
        default boolean startPaused() {
            return false;
        }
    }

    /** A user's control request as the loop applies it ({@link RunControl}). */
    public record Control(long seq, RunControl.Action action, String prompts, String promptsFormat) {}

    /**
     * How often paused ranks agree on the requests they have (one all-reduce of world + 1 floats):
     * a request, or a node leaving, reaches every rank within this, without any rank waiting on a
     * collective that a peer never enters.
     */
    public static final java.time.Duration PAUSE_POLL = java.time.Duration.ofSeconds(1);

    /**
     * How long a rank waits for its peers: the first step waits for every rank's model load (and rank
     * 0's starting validation); a step after a validation step waits for rank 0's validation; a
     * checkpoint for rank 0's writing; any other step {@link #STEP_FACTOR} x the median step time
     * measured so far, never less than {@link #STEP_FLOOR}.
     */
    static final java.time.Duration LOAD_BOUND = java.time.Duration.ofMinutes(10);
    static final java.time.Duration VALIDATION_BOUND = java.time.Duration.ofMinutes(10);
    static final java.time.Duration CHECKPOINT_BOUND = java.time.Duration.ofMinutes(10);
    static final java.time.Duration STEP_FLOOR = java.time.Duration.ofSeconds(60);
    static final int STEP_FACTOR = 10;

    private final RunConfig run;
    private final Path resume;
    private final Collective collective;
    private final StepListener listener;
    private final Consumer<String> warn;
    private final ComputeConfig compute;
    /** What the users' control requests have set so far (paused, the sample prompts); written into every checkpoint. */
    private RunControls controls;

    /**
     * @param resume a checkpoint to continue from exactly (any worker count), or null
     * @param collective the data plane of a cluster run, or null for one process
     */
    public TrainLoop(RunConfig run, Path resume, Collective collective, StepListener listener, Consumer<String> warn) {
        this(run, resume, collective, listener, warn, ComputeConfig.CPU_FP32);
    }

    /** @param compute the device and precision (fp32 masters stay in the host's flat buffers either way) */
    public TrainLoop(RunConfig run, Path resume, Collective collective, StepListener listener, Consumer<String> warn,
            ComputeConfig compute) {
        this.compute = compute;
        this.run = run;
        this.resume = resume;
        this.collective = collective;
        this.listener = listener;
        this.warn = warn;
    }

    /** Trains to the end; returns the last step's metrics (null when the checkpoint was already at the end). */
    public StepMetrics run() {
        TrainConfig cfg = run.train();
        boolean rank0 = collective == null || collective.rank() == 0;
        try (Trainer t = new Trainer(cfg, run.optimizer(), resume, warn, collective, compute);
                RunOutputs outputs = RunOutputs.open(cfg, collective, t, warn)) {
            bound(LOAD_BOUND, "every rank's model load and the starting validation");
            double startVal = t.step() == 0 ? validate(t, 0) : Double.NaN; // every rank validates its share of the images
            if (rank0) {
                // only now that the model, the data and the checkpoint were accepted: a refused run writes nothing
                writeRunFiles(cfg.out());
            }
            if (t.step() == 0) {
                listener.stepCompleted(new StepMetrics(0, Double.NaN, 0, 0, Double.NaN, Double.NaN, Double.NaN, Double.NaN,
                        Double.NaN, startVal), t.totalSteps());
            }
            controls = RunControls.resumed(resume, outputs, t, warn).paused(listener.startPaused());
            StepMetrics last = null;
            long lastCheckpoint = System.nanoTime();
            boolean stopped = controls.paused() && pauseLoop(t, outputs, rank0).stop();
            java.util.List<Double> stepSeconds = new java.util.ArrayList<>();
            while (!stopped && t.step() < t.totalSteps()) {
                long t0 = System.nanoTime();
                StepMetrics m = t.trainStep();
                stepSeconds.add((System.nanoTime() - t0) / 1e9);
                if (stepSeconds.size() > 101) {
                    stepSeconds.remove(0); // the median of the last 101 steps
                }
                boolean end = t.step() == t.totalSteps();
                boolean validated = end || (t.valEveryNSteps() > 0 && m.step() % t.valEveryNSteps() == 0);
                if (validated) {
                    m = m.withValLoss(validate(t, m.step()));
                }
                listener.stepCompleted(m, t.totalSteps());
                outputs.afterStep(t, m); // rank 0 samples and logs; the others wait at the next collective
                if (validated) {
                    bound(VALIDATION_BOUND, "rank 0's validation after step " + m.step());
                } else {
                    boundStep(stepSeconds);
                }
                last = m;
                if (end) {
                    checkpoint(t, rank0);
                    break;
                }
                Boundary b = boundary(t, outputs, rank0);
                if (b.stop() || b.leave() || b.checkpoint() || checkpointDue(cfg, t, lastCheckpoint)) {
                    Path dir = checkpoint(t, rank0);
                    lastCheckpoint = System.nanoTime();
                    b.report(dir);
                    if (b.leave() && !b.stop()) { // a stop at the same boundary ends the run here anyway, with its final model
                        // every rank is past the checkpoint's barrier: the commit is done; the generation ends here
                        throw new GenerationStopped(t.step(), dir.toAbsolutePath());
                    }
                } else {
                    b.report(null);
                }
                if (controls.paused() && !b.stop()) { // every rank is here together: paused is agreed
                    b = pauseLoop(t, outputs, rank0);
                    lastCheckpoint = System.nanoTime(); // the pause is no training time: the minute cadence starts again
                    boundStep(stepSeconds);
                }
                if (b.stop()) {
                    LOG.info("stopped by a control request after step {} of {}", t.step(), t.totalSteps());
                    break; // the final model is written below, as at the end
                }
            }
            if (last != null && t.appliedSteps() == 0) { // the same on every rank: skips are decided on all-reduced norms
                throw new dev.dreamcluster.run.TrainingHalted("no step of this run changed the weights: all " + last.step() + " steps were "
                        + "skipped (" + last.skipped() + "); no final model written");
            }
            if (rank0) {
                t.saveModel(cfg.out().resolve("final"), cfg.saveFullPrecision() ? DType.F32 : DType.F16);
            }
            outputs.finish(t); // rank 0: final.safetensors (save_single_file), the TensorBoard file closed
            t.barrier(); // nobody leaves before rank 0 has written the final model
            return last;
        }
    }

    /** Every rank's share of the validation; its time goes to the log (the step benchmark reads it). */
    private double validate(Trainer t, int step) {
        long t0 = System.nanoTime();
        double v = t.validate();
        LOG.info("validation at step {}: val_loss {} in {} s on {} rank(s)", step, String.format("%.6f", v),
                String.format(java.util.Locale.ROOT, "%.3f", (System.nanoTime() - t0) / 1e9), collective == null ? 1 : collective.worldSize());
        return v;
    }

    /** The bound of an ordinary step: {@link #STEP_FACTOR} x the median step time so far, at least {@link #STEP_FLOOR}. */
    private void boundStep(java.util.List<Double> stepSeconds) {
        bound(stepBound(stepSeconds), "a step (" + STEP_FACTOR + " x the median step time, at least " + STEP_FLOOR.toSeconds() + " s)");
    }

    private void bound(java.time.Duration d, String what) {
        if (collective != null) {
            collective.setTimeout(d, what);
        }
    }

    static java.time.Duration stepBound(java.util.List<Double> seconds) {
        double[] s = seconds.stream().mapToDouble(Double::doubleValue).sorted().toArray();
        double median = s[s.length / 2];
        return java.time.Duration.ofMillis(Math.max(STEP_FLOOR.toMillis(), (long) (STEP_FACTOR * median * 1000)));
    }

    /**
     * While paused: every rank comes back at least every {@link #PAUSE_POLL} to agree on the requests
     * they have; a checkpoint or stop request, or a node leaving, is acted on here. Returns when resumed
     * or stopped (the last boundary's decision).
     */
    private Boundary pauseLoop(Trainer t, RunOutputs outputs, boolean rank0) {
        Boundary b;
        do {
            awaitControl();
            bound(STEP_FLOOR, "every rank's control requests while paused");
            b = boundary(t, outputs, rank0);
            Path dir = b.stop() || b.leave() || b.checkpoint() ? checkpoint(t, rank0) : null;
            b.report(dir);
            if (b.leave() && !b.stop()) {
                throw new GenerationStopped(t.step(), dir.toAbsolutePath());
            }
        } while (controls.paused() && !b.stop());
        return b;
    }

    private void awaitControl() {
        try {
            listener.awaitControl(listener.controlsReceived());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while paused", e); // an abort: the generation ends
        }
    }

    private static long bytesUnder(Path dir) {
        try (java.util.stream.Stream<Path> all = Files.walk(dir)) {
            return all.filter(Files::isRegularFile).mapToLong(f -> f.toFile().length()).sum();
        } catch (IOException | UncheckedIOException e) {
            return -1; // pruned or moved meanwhile: the size is only for the log
        }
    }

    /** The commit of this step's checkpoint on every rank (rank 0 writes it, with the run's control state). */
    private Path checkpoint(Trainer t, boolean rank0) {
        Path dir = run.train().out().resolve("checkpoints").resolve(String.format("step-%06d", t.step()));
        bound(CHECKPOINT_BOUND, "the checkpoint of step " + t.step());
        long t0 = System.nanoTime();
        t.checkpoint(dir, controls.toJson());
        if (rank0) {
            // the commit's cost against a preemption grace: bench memory reads this line
            LOG.info("checkpoint {} committed in {} s ({} bytes)", dir.getFileName(), String.format(java.util.Locale.ROOT, "%.2f",
                    (System.nanoTime() - t0) / 1e9), bytesUnder(dir));
            listener.checkpointCommitted(t.step(), t.totalSteps(), dir.toAbsolutePath());
        }
        return dir;
    }

    /**
     * What every rank does at this step boundary, agreed on by all: leave (a rank's node is leaving),
     * and the control requests every rank has received, applied in order.
     *
     * @param report rank 0 reports each applied request, naming the checkpoint when one was committed
     */
    private record Boundary(boolean leave, boolean stop, boolean checkpoint, java.util.function.Consumer<Path> report) {
        void report(Path dir) {
            report.accept(dir);
        }
    }

    /**
     * One all-reduce of world + 1 floats at the same point of every rank's loop: slot 0 sums the ranks
     * that ask to leave (a SIGTERM), slot 1 + r holds rank r's count of received control requests, so
     * every rank sees the same minimum and applies the same requests, and all stop, pause or
     * checkpoint after the same step. A request relayed by the coordinator as a step number could not
     * do this: reports reach it a step or more late. Counts are exact in float32 up to 2^24 requests.
     */
    private Boundary boundary(Trainer t, RunOutputs outputs, boolean rank0) {
        boolean leave = listener.stopRequested();
        int received = listener.controlsReceived();
        int agreed = received;
        if (collective != null && collective.worldSize() > 1) {
            int world = collective.worldSize();
            float[] v = new float[world + 1];
            v[0] = leave ? 1f : 0f;
            v[1 + collective.rank()] = received;
            collective.allReduce(v, v.length);
            leave = v[0] > 0f;
            for (int r = 0; r < world; r++) {
                agreed = Math.min(agreed, (int) v[1 + r]);
            }
        }
        java.util.List<Control> applied = new java.util.ArrayList<>();
        for (int i = controls.applied(); i < agreed; i++) {
            applied.add(listener.control(i));
        }
        RunControls.Applied a = controls.apply(applied, outputs, t, run.train().out(), warn);
        controls = a.controls();
        int step = t.step();
        return new Boundary(leave, a.stop(), a.checkpoint(), dir -> {
            if (rank0) {
                for (int i = 0; i < applied.size(); i++) {
                    String detail = a.details().get(i);
                    if (dir != null && (applied.get(i).action() == RunControl.Action.CHECKPOINT
                            || applied.get(i).action() == RunControl.Action.STOP)) {
                        detail = "checkpoint " + dir.toAbsolutePath() + (detail.isEmpty() ? "" : "; " + detail);
                    }
                    listener.controlApplied(applied.get(i), step, detail);
                }
            }
        });
    }

    /**
     * Step and epoch cadences are the same on every rank; the minute cadence is rank 0's clock,
     * broadcast, so all ranks checkpoint at the same step (the checkpoint is collective).
     */
    private boolean checkpointDue(TrainConfig cfg, Trainer t, long lastCheckpoint) {
        boolean byStep = cfg.saveEveryNSteps() > 0 && t.step() % cfg.saveEveryNSteps() == 0;
        boolean byEpoch = t.atEpochEnd() && cfg.saveEveryNEpochs() > 0 && (t.epoch() + 1) % cfg.saveEveryNEpochs() == 0
                && t.epoch() + 1 >= cfg.features().saveCkptsFromNEpochs();
        boolean byTime = false;
        if (cfg.ckptEveryNMinutes() > 0) {
            float[] due = {System.nanoTime() - lastCheckpoint > cfg.ckptEveryNMinutes() * 60e9 ? 1f : 0f};
            if (collective != null && collective.worldSize() > 1) {
                collective.broadcast(due, 1, 0);
            }
            byTime = due[0] != 0f;
        }
        return byStep || byEpoch || byTime;
    }

    /** train_config.json and resolved_optimizer_config.json: what this run was resolved to. */
    private void writeRunFiles(Path out) {
        try {
            Files.createDirectories(out);
            AtomicFiles.writeString(out.resolve("train_config.json"), run.toJsonNode().get("train_config").toPrettyString() + "\n");
            AtomicFiles.writeString(out.resolve("resolved_optimizer_config.json"),
                    run.toJsonNode().get("optimizer_config").toPrettyString() + "\n");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write to " + out, e);
        }
    }
}
