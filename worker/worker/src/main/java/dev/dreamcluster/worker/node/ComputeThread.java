package dev.dreamcluster.worker.node;

import akka.actor.typed.ActorRef;
import dev.dreamcluster.collective.Collective;
import dev.dreamcluster.collective.RingCollective;
import dev.dreamcluster.config.RunConfig;
import dev.dreamcluster.io.StepMetrics;
import dev.dreamcluster.protocol.CoordinatorProtocol;
import dev.dreamcluster.protocol.RunPlan;
import dev.dreamcluster.protocol.SenderGate;
import dev.dreamcluster.protocol.WorkerProtocol;
import dev.dreamcluster.worker.train.ComputeConfig;
import dev.dreamcluster.worker.train.TrainLoop;
import java.nio.channels.ServerSocketChannel;
import java.nio.file.Path;
import java.time.Duration;

/**
 * The one thread of a worker that owns DJL (grad mode is thread-local; one GradientCollector per
 * JVM), the training loop and the ring. It reports every step to the coordinator and its end to
 * both the coordinator and the worker actor. {@link #abort} closes the ring, which fails the step in
 * progress here and, through the sockets, on every peer.
 */
final class ComputeThread extends Thread {
    private final RunPlan plan;
    private final int rank;
    private final RunConfig run;
    private final Path resume;
    private final ServerSocketChannel server;
    private final ActorRef<CoordinatorProtocol.Command> coordinator;
    private final ActorRef<Worker.Command> worker;
    private final WorkerCompute workerCompute;
    private volatile Collective ring;
    /** Set by {@link #abort} before it interrupts: errors after it are the abort's, not the input's. */
    private volatile boolean aborted;
    /** Set by {@link #stopAtNextStep}: this node is leaving; read by the loop once per step. */
    private volatile boolean stopRequested;
    /**
     * The control requests of this generation received so far, by index (the worker actor appends,
     * the loop reads; guarded by itself, which the loop also waits on while paused).
     */
    private final java.util.List<WorkerProtocol.Control> controls = new java.util.ArrayList<>();
    /** The run was paused when this generation was planned: wait for a resume before the first step. */
    private final boolean startPaused;
    /**
     * This rank's time per step over the generation (compute thread only; for {@link #timeSummary}): compute,
     * comm and optimizer seconds, then what the ring's profile gained since the previous step (wait in
     * read, reduce or copy out, pack, write, in seconds, and bytes received).
     */
    private final java.util.List<double[]> stepTimes = new java.util.ArrayList<>();
    private RingCollective.Profile lastProfile;

    ComputeThread(RunPlan plan, int rank, RunConfig run, Path resume, ServerSocketChannel server,
            ActorRef<CoordinatorProtocol.Command> coordinator, ActorRef<Worker.Command> worker, WorkerCompute workerCompute,
            boolean startPaused) {
        super("dreamcluster-compute-" + rank);
        this.startPaused = startPaused;
        this.workerCompute = workerCompute;
        this.plan = plan;
        this.rank = rank;
        this.run = run;
        this.resume = resume;
        this.server = server;
        this.coordinator = coordinator;
        this.worker = worker;
        setDaemon(true);
    }

    int rank() {
        return rank;
    }

    /**
     * Asks every rank to stop after the step in flight, with a checkpoint (this node got SIGTERM): the
     * loop all-reduces the request at the next step boundary, so the whole generation stops there.
     */
    void stopAtNextStep() {
        stopRequested = true;
        synchronized (controls) {
            controls.notifyAll(); // a paused loop must reach its next boundary
        }
    }

    /** A user's control request (from the worker actor's thread): kept in index order, and wakes a paused loop. */
    void control(WorkerProtocol.Control c) {
        synchronized (controls) {
            if (c.index() != controls.size()) {
                // Akka keeps one sender's order: a gap means a lost message, and the loop would wait for it forever
                System.err.println("rank " + rank + " warning: control #" + c.seq() + " arrived as index " + c.index() + ", expected "
                        + controls.size() + "; ignored");
                return;
            }
            controls.add(c);
            controls.notifyAll();
        }
    }

    void abort() {
        aborted = true;
        synchronized (controls) {
            controls.notifyAll();
        }
        Collective r = ring;
        if (r != null) {
            r.close();
        }
        interrupt();
    }

    @Override
    public void run() {
        boolean ok = false;
        int stopStatus = 0;
        String message;
        try {
            ComputeConfig compute = workerCompute.config(run); // the run's device and precision, with this worker's --device
            try (Collective r = WorkerCompute.connect(plan, rank, server, compute)) { // the ring, or NCCL when the plan says so
                ring = r;
                // which optimizer kernels this JVM runs, and whether it got the JIT setting they need (Simd)
                System.err.println("rank " + rank + ": optimizer kernels " + dev.dreamcluster.optim.kernel.Simd.describe());
                new TrainLoop(run, resume, r, listener(), w -> System.err.println("rank " + rank + " warning: " + w), compute).run();
                System.err.println(timeSummary());
            }
            ok = true;
            message = "done";
        } catch (dev.dreamcluster.worker.train.GenerationStopped e) {
            message = e.getMessage(); // the checkpoint is committed: the next generation starts from it
        } catch (dev.dreamcluster.config.ConfigError e) {
            message = e.getMessage(); // one line naming the file or value, as a single-process run prints it
            // an abort interrupts this thread, and an image read that is interrupted fails as if the file
            // were bad ("has no decoder"): only an error of a thread nobody stopped is the input's
            stopStatus = aborted ? 0 : dev.dreamcluster.protocol.TrainingEvent.RunFinished.EXIT_INPUT;
        } catch (dev.dreamcluster.run.TrainingHalted e) {
            message = e.getMessage(); // every rank halts at the same step (an all-reduced decision) or on its own machine's op check
            stopStatus = aborted ? 0 : dev.dreamcluster.protocol.TrainingEvent.RunFinished.EXIT_HALTED;
        } catch (RuntimeException e) {
            message = e.getMessage() == null ? e.toString() : e.getMessage();
        } catch (Error e) {
            // a broken installation (a missing class, no native library) or out of memory: the node must
            // still report and end, or the whole run waits for a thread that is gone
            message = "internal error on rank " + rank + ": " + e;
            e.printStackTrace();
        }
        if (ok) {
            SenderGate.tell(coordinator, new CoordinatorProtocol.RunEnded(plan.runId(), rank, true, message), worker);
        }
        // a failure is the worker actor's to report (GenerationEnded, with its next ring address)
        worker.tell(new Worker.ComputeEnded(ok, message, stopStatus));
    }

    private TrainLoop.StepListener listener() {
        return new TrainLoop.StepListener() {
            @Override
            public void stepCompleted(StepMetrics m, int totalSteps) {
                report(m);
            }

            @Override
            public boolean stopRequested() {
                return stopRequested;
            }

            @Override
            public int controlsReceived() {
                synchronized (controls) {
                    return controls.size();
                }
            }

            @Override
            public TrainLoop.Control control(int index) {
                WorkerProtocol.Control c;
                synchronized (controls) {
                    c = controls.get(index);
                }
                return new TrainLoop.Control(c.seq(), c.action(), c.prompts(), c.promptsFormat());
            }

            @Override
            public void awaitControl(int received) throws InterruptedException {
                // at most PAUSE_POLL: every paused rank must come back to agree, or a rank whose node is leaving
                // would wait in the all-reduce for peers that sleep here
                long deadline = System.nanoTime() + TrainLoop.PAUSE_POLL.toNanos();
                synchronized (controls) {
                    long left;
                    while (controls.size() <= received && !stopRequested && !aborted && (left = deadline - System.nanoTime()) > 0) {
                        java.util.concurrent.TimeUnit.NANOSECONDS.timedWait(controls, left);
                    }
                }
            }

            @Override
            public boolean startPaused() {
                return startPaused;
            }

            @Override
            public void controlApplied(TrainLoop.Control c, int step, String detail) {
                SenderGate.tell(coordinator, new CoordinatorProtocol.ControlApplied(plan.runId(), plan.generation(), c.seq(), c.action(),
                        step, detail), worker);
            }

            @Override
            public void checkpointCommitted(int step, int totalSteps, Path dir) {
                SenderGate.tell(coordinator, new CoordinatorProtocol.CheckpointCommitted(plan.runId(), plan.generation(), step,
                        totalSteps, dir.toString()), worker);
            }
        };
    }

    /**
     * Where this rank's time went, medians over the generation's steps (robust to a warm-up step), and
     * on the ring where its collective time went. Rank against rank it separates the two parts of
     * "comm": a rank that computed faster waits in read for its left neighbour (load imbalance), the
     * rest is the transfer itself (docs/performance.md).
     */
    private String timeSummary() {
        double[] med = new double[8];
        for (int k = 0; k < med.length; k++) {
            final int c = k;
            med[k] = dev.dreamcluster.stats.Stats.median(stepTimes.stream().mapToDouble(x -> x[c]).toArray());
        }
        String s = String.format(java.util.Locale.ROOT, "rank %d: %d steps, medians per step: compute %.1f ms, comm %.1f ms, optimizer"
                + " %.1f ms", rank, stepTimes.size(), med[0] * 1e3, med[1] * 1e3, med[2] * 1e3);
        if (lastProfile != null) {
            s += String.format(java.util.Locale.ROOT, "; ring: wait in read %.1f ms, reduce or copy out %.1f ms, pack %.1f ms, write"
                    + " %.1f ms, %.1f MB received", med[3] * 1e3, med[4] * 1e3, med[5] * 1e3, med[6] * 1e3, med[7] / 1e6);
        }
        return s;
    }

    private void report(StepMetrics m) {
        if (Double.isFinite(m.computeSeconds())) { // step 0's row (the starting val_loss) has no step time
            double[] row = {m.computeSeconds(), m.commSeconds(), m.optimizerSeconds(), 0, 0, 0, 0, 0};
            if (ring instanceof RingCollective rc) { // between steps every collective has been joined: the sender is idle
                RingCollective.Profile p = rc.profile();
                RingCollective.Profile d = p.since(lastProfile != null ? lastProfile : RingCollective.Profile.ZERO);
                row[3] = d.waitNanos() / 1e9;
                row[4] = d.reduceNanos() / 1e9;
                row[5] = d.packNanos() / 1e9;
                row[6] = d.writeNanos() / 1e9;
                row[7] = d.bytesReceived();
                lastProfile = p;
            }
            stepTimes.add(row);
        }
        SenderGate.tell(coordinator, new CoordinatorProtocol.StepReported(plan.runId(), rank, m.step(), m.loss(), m.lrUnet(),
                m.lrTextEncoder(), m.gradNorm(), m.samplesPerS(), m.computeSeconds(), m.commSeconds(), m.optimizerSeconds(), m.valLoss(), m.skipped()),
                worker);
    }
}
