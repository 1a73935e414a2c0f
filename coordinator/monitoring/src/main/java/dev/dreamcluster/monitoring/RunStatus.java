package dev.dreamcluster.monitoring;

import dev.dreamcluster.protocol.TrainingEvent;
import java.util.ArrayDeque;
import java.util.List;
import java.util.TreeMap;

/**
 * A run as the TrainingEvent topic tells it, folded event by event: its phase, the last step's
 * numbers, each rank's step-time split and a rate for the ETA. One owner (an actor or the terminal
 * printer) feeds it; {@link #snapshot} hands out an immutable copy.
 *
 * <p>Rate and ETA come from the wall-clock spacing of the last {@value #RATE_WINDOW} steps as they
 * arrived here (so they include validation and checkpoint pauses, as a user's wait does).
 */
public final class RunStatus {
    static final int RATE_WINDOW = 20;

    /** One rank's latest step: where its seconds went. */
    public record WorkerSplit(int rank, String address, int step, double samplesPerS, double computeSeconds, double commSeconds,
            double optimizerSeconds) {}

    /**
     * What a monitor shows. {@code runId} is 0 and {@code phase} "waiting" until a run started;
     * {@code generation} is -1 until one started; numbers not known yet are NaN; {@code totalSteps}
     * 0 means unknown.
     */
    public record Snapshot(long runId, int generation, String phase, int workers, String planHash, int step, int totalSteps, double loss,
            double valLoss, int valLossStep, double lrUnet, double lrTextEncoder, double gradNorm, double samplesPerS,
            double secondsPerStep, double etaSeconds, List<WorkerSplit> split, String message) {
        /** Fraction done in [0, 1], NaN when the length is unknown. */
        public double progress() {
            return totalSteps > 0 ? Math.min(1.0, step / (double) totalSteps) : Double.NaN;
        }
    }

    private long runId;
    private int generation = -1;
    private String phase = "waiting";
    private int workers;
    private String planHash = "";
    private int totalSteps;
    private TrainingEvent.StepCompleted last;
    private double valLoss = Double.NaN;
    private int valLossStep;
    private String message = "";
    private final TreeMap<Integer, WorkerSplit> split = new TreeMap<>();
    private final ArrayDeque<long[]> arrivals = new ArrayDeque<>(); // {step, nanoTime}

    /** Folds one event received at {@code nanoTime}. */
    public void on(TrainingEvent event, long nanoTime) {
        if (event instanceof TrainingEvent.RunStarted s) {
            runId = s.runId();
            workers = s.workers();
            planHash = s.planHash();
            totalSteps = s.totalSteps();
            phase = "running";
        } else if (event instanceof TrainingEvent.GenerationStarted g) {
            // a new world: ranks are renumbered and steps after fromStep are done again, so the split and the rate restart
            adopt(g.runId());
            generation = g.generation();
            workers = g.world();
            planHash = g.planHash();
            split.clear();
            arrivals.clear();
            if (g.generation() > 0) {
                message = "generation " + g.generation() + " from step " + g.fromStep() + ": " + g.reason();
            }
        } else if (event instanceof TrainingEvent.WorkerJoined j) {
            message = "worker joined: " + j.address() + " (admitted at the next checkpoint)";
        } else if (event instanceof TrainingEvent.StepCompleted s) {
            adopt(s.runId());
            last = s;
            if (!Double.isNaN(s.valLoss())) {
                valLoss = s.valLoss();
                valLossStep = s.step();
            }
            arrivals.addLast(new long[] {s.step(), nanoTime});
            while (arrivals.size() > RATE_WINDOW) {
                arrivals.removeFirst();
            }
        } else if (event instanceof TrainingEvent.WorkerStepCompleted w) {
            adopt(w.runId());
            split.put(w.rank(), new WorkerSplit(w.rank(), w.address(), w.step(), w.samplesPerS(), w.computeSeconds(),
                    w.commSeconds(), w.optimizerSeconds()));
        } else if (event instanceof TrainingEvent.WorkerLost w) {
            message = "worker lost: " + w.address();
        } else if (event instanceof TrainingEvent.ControlRequested c) {
            message = c.action() + " requested (#" + c.seq() + ", " + c.source() + "): applied at the next step boundary";
        } else if (event instanceof TrainingEvent.ControlApplied c) {
            adopt(c.runId());
            if ("pause".equals(c.action())) {
                phase = "paused";
            } else if ("resume".equals(c.action()) && "paused".equals(phase)) {
                phase = "running";
                arrivals.clear(); // the pause is not the step rate
            }
            message = c.action() + " applied after step " + c.step() + " (#" + c.seq() + ")" + (c.detail().isEmpty() ? "" : ": "
                    + c.detail());
        } else if (event instanceof TrainingEvent.RunFinished f) {
            adopt(f.runId());
            phase = f.ok() ? "finished" : "failed";
            message = f.message();
        }
    }

    /** A monitor that joined mid-run never saw RunStarted: the first step tells it the run. */
    private void adopt(long id) {
        if (runId == 0) {
            runId = id;
            phase = "running";
        }
    }

    public Snapshot snapshot() {
        double secondsPerStep = Double.NaN;
        if (arrivals.size() >= 2) {
            long[] first = arrivals.peekFirst();
            long[] newest = arrivals.peekLast();
            if (newest[0] > first[0]) {
                secondsPerStep = (newest[1] - first[1]) / 1e9 / (newest[0] - first[0]);
            }
        }
        int step = last == null ? 0 : last.step();
        double eta = Double.NaN;
        if (totalSteps > 0 && ("finished".equals(phase) || step >= totalSteps)) {
            eta = 0;
        } else if (totalSteps > 0 && !Double.isNaN(secondsPerStep) && "running".equals(phase)) {
            eta = (totalSteps - step) * secondsPerStep;
        }
        return new Snapshot(runId, generation, phase, workers, planHash, step, totalSteps, last == null ? Double.NaN : last.loss(), valLoss,
                valLossStep, last == null ? Double.NaN : last.lrUnet(), last == null ? Double.NaN : last.lrTextEncoder(),
                last == null ? Double.NaN : last.gradNorm(), last == null ? Double.NaN : last.samplesPerS(), secondsPerStep, eta,
                List.copyOf(split.values()), message);
    }
}
