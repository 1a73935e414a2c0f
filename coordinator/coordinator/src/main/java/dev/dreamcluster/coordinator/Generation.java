package dev.dreamcluster.coordinator;

import static dev.dreamcluster.coordinator.Env.seconds;

import akka.actor.typed.ActorRef;
import akka.actor.typed.Behavior;
import akka.actor.typed.javadsl.Behaviors;
import dev.dreamcluster.collective.RingCollective;
import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.coordinator.Coordinator.Planned;
import dev.dreamcluster.coordinator.Coordinator.Timeout;
import dev.dreamcluster.io.StepMetrics;
import dev.dreamcluster.protocol.CoordinatorProtocol.CheckpointCommitted;
import dev.dreamcluster.protocol.CoordinatorProtocol.GenerationEnded;
import dev.dreamcluster.protocol.CoordinatorProtocol.PlanAccepted;
import dev.dreamcluster.protocol.CoordinatorProtocol.PlanRefused;
import dev.dreamcluster.protocol.CoordinatorProtocol.RunEnded;
import dev.dreamcluster.protocol.CoordinatorProtocol.StepReported;
import dev.dreamcluster.protocol.CoordinatorProtocol.WorkerLeaving;
import dev.dreamcluster.protocol.DataPlane;
import dev.dreamcluster.protocol.RunPlan;
import dev.dreamcluster.protocol.TrainingEvent;
import dev.dreamcluster.protocol.WorkerProtocol;
import java.util.Comparator;
import java.util.List;
import java.util.Set;
import java.util.stream.IntStream;

/**
 * The coordinator's phases of one generation, from its plan to its end: assigning (every rank
 * accepts the plan), running (step reports become events and metrics lines) and aborting (every
 * rank answers the end). They share the coordinator's skeleton ({@link Coordinator#phase}): discovery,
 * membership and the user's stop are handled the same in every phase. What only one phase counts
 * (plans accepted, ranks finished, aborts answered) is passed along with the {@link RunState}.
 */
final class Generation {
    private Generation() {}

    /** Ranks in a deterministic order (actor path), then the plan to every rank. */
    static Behavior<Object> assign(Env env, RunState s, Planned p) {
        if (p.generation() != s.generation()) {
            return Behaviors.same();
        }
        if (p.error() != null) {
            return Coordinator.fail(env, s, "cannot compute the plan for generation " + s.generation() + ": " + p.error());
        }
        var entries = p.manifest().entries();
        int world = entries.containsKey("world") ? Integer.parseInt(entries.get("world")) : env.settings().minWorkers();
        var available = s.workers().available();
        if (available.size() < world) {
            return Coordinator.waitForWorkers(env, s, "workers left while the plan was computed");
        }
        List<ActorRef<WorkerProtocol.Command>> ranks = available.keySet().stream().sorted(Comparator.comparing(r -> r.path().toString()))
                .limit(world).toList();
        RunState next = s.assigned(ranks, p.hash());
        DataPlane dataPlane;
        try {
            dataPlane = dataPlane(env, next);
        } catch (ConfigError e) {
            return Coordinator.fail(env, next, e.getMessage());
        }
        List<String> peers = ranks.stream().map(available::get).toList();
        RunPlan plan = new RunPlan(env.runId(), next.generation(), p.hash(), p.manifest().lines(), peers, env.settings().runConfig(),
                next.checkpoint(), RingCollective.newSecret(), dataPlane);
        for (int r = 0; r < ranks.size(); r++) {
            env.tell(ranks.get(r), new WorkerProtocol.AssignPlan(plan, r, env.replies()));
        }
        env.timers().startSingleTimer(Timeout.ACCEPT, env.settings().timeouts().accept());
        return assigning(env, next, Set.of());
    }

    /**
     * Generation 0: rank 0's NCCL id when every rank offers one (and --collective allows), else the
     * ring. An NCCL id serves one communicator: later generations (whose workers offered theirs once,
     * at the start) use the ring.
     *
     * @throws ConfigError when --collective asks for NCCL and a rank cannot run it
     */
    private static DataPlane dataPlane(Env env, RunState s) {
        if (s.generation() != 0) {
            return DataPlane.RING;
        }
        return DataPlane.choose(env.settings().collective(), s.ranks().stream().map(s.workers().offers()::get).toList(),
                line -> env.log().info(line));
    }

    // ---- phases ----

    private static Behavior<Object> assigning(Env env, RunState s, Set<Integer> accepted) {
        return Coordinator.phase(env, s, Behaviors.receive(Object.class)
                .onMessage(PlanAccepted.class, m -> onAccepted(env, s, accepted, m))
                .onMessage(PlanRefused.class, m -> onRefused(env, s, m))
                .onMessage(GenerationEnded.class, m -> onEndedBeforeStart(env, s, m))
                .onMessageEquals(Timeout.ACCEPT, () -> onAcceptTimeout(env, s, accepted)),
                next -> assigning(env, next, accepted),
                (next, why) -> why == null ? assigning(env, next, accepted) : abort(env, next, why, Set.of()));
    }

    /** {@code finished}: ranks that ended the run; {@code answered}: ranks that ended this generation. */
    private static Behavior<Object> running(Env env, RunState s, Set<Integer> finished, Set<Integer> answered) {
        return Coordinator.phase(env, s, Behaviors.receive(Object.class)
                .onMessage(StepReported.class, m -> onStepReported(env, s, m))
                .onMessage(CheckpointCommitted.class, m -> onCheckpoint(env, s, finished, answered, m))
                .onMessage(GenerationEnded.class, m -> onGenerationEnded(env, s, answered, m))
                .onMessage(WorkerLeaving.class, m -> running(env, onLeaving(env, s, m), finished, answered))
                .onMessage(Coordinator.StopAtCheckpoint.class, m -> onStopAtCheckpoint(env, s, finished, answered, m))
                .onMessage(Coordinator.Control.class, m -> running(env, Coordinator.onControl(env, s, m, true), finished, answered))
                .onMessage(RunEnded.class, m -> onRunEnded(env, s, finished, answered, m)),
                next -> running(env, next, finished, answered),
                (next, why) -> why == null ? running(env, next, finished, answered) : abort(env, next, why, answered));
    }

    private static Behavior<Object> aborting(Env env, RunState s, Set<Integer> answered) {
        return Coordinator.phase(env, s, Behaviors.receive(Object.class)
                .onMessage(GenerationEnded.class, m -> onAbortAnswered(env, s, answered, m))
                .onMessage(WorkerLeaving.class, m -> aborting(env, onLeaving(env, s, m), answered))
                .onMessage(Coordinator.StopAtCheckpoint.class, m -> aborting(env, s.stopAtCheckpoint(m.reason()), answered))
                .onMessage(CheckpointCommitted.class, m -> aborting(env, onCommittedWhileAborting(env, s, m), answered))
                .onMessage(RunEnded.class, m -> onFinishedWhileAborting(env, s, answered, m))
                .onMessageEquals(Timeout.ABORT, () -> onAbortTimeout(env, s, answered)),
                next -> aborting(env, next, answered), (next, why) -> afterAnswer(env, next, answered));
    }

    // ---- assigning ----

    private static Behavior<Object> onAccepted(Env env, RunState s, Set<Integer> accepted, PlanAccepted a) {
        if (a.runId() != env.runId()) {
            return Behaviors.same();
        }
        Set<Integer> now = RunState.plus(accepted, a.rank());
        if (now.size() < s.ranks().size()) {
            return assigning(env, s, now);
        }
        env.timers().cancel(Timeout.ACCEPT);
        boolean paused = s.controls().paused(); // a paused run's next generation waits for a resume before its first step
        s.ranks().forEach(w -> env.tell(w, new WorkerProtocol.StartRun(env.runId(), paused)));
        if (s.generation() == 0) {
            env.publish(s, new TrainingEvent.RunStarted(env.runId(), s.ranks().size(), s.planHash(), env.totalSteps()));
        }
        env.folder().tell(RunFolder.RestartHistory.INSTANCE); // steps after the checkpoint are trained again: their old lines go
        env.publish(s, new TrainingEvent.GenerationStarted(env.runId(), s.generation(), s.ranks().size(), s.checkpointStep(), s.planHash(),
                s.reason()));
        env.log().info("generation {} started: {} workers from step {} ({})", s.generation(), s.ranks().size(), s.checkpointStep(),
                s.reason());
        return running(env, Coordinator.resendControls(env, s), Set.of(), Set.of());
    }

    private static Behavior<Object> onAcceptTimeout(Env env, RunState s, Set<Integer> accepted) {
        return Coordinator.fail(env, s, "not every rank answered the plan within " + seconds(env.settings().timeouts().accept())
                + " (accepted: " + accepted.size() + " of " + s.ranks().size() + ")");
    }

    private static Behavior<Object> onRefused(Env env, RunState s, PlanRefused r) {
        return r.runId() != env.runId() ? Behaviors.same()
                : Coordinator.fail(env, s, "rank " + r.rank() + " refused the plan: " + r.reason());
    }

    private static Behavior<Object> onEndedBeforeStart(Env env, RunState s, GenerationEnded e) {
        if (e.generation() != s.generation()) {
            return Behaviors.same();
        }
        return e.stopStatus() != 0 ? Coordinator.failOnInput(env, s, e)
                : abort(env, s, "rank " + e.rank() + " failed before the start: " + e.message(), Set.of());
    }

    // ---- running ----

    private static Behavior<Object> onStepReported(Env env, RunState s, StepReported r) {
        if (r.runId() != env.runId()) {
            return Behaviors.same();
        }
        env.publish(s, new TrainingEvent.WorkerStepCompleted(r.runId(), r.rank(), s.ranks().get(r.rank()).path().address().toString(),
                r.step(), r.samplesPerS(), r.computeSeconds(), r.commSeconds(), r.optimizerSeconds()));
        if (r.rank() == 0) { // rank 0's view is the run's: one StepCompleted and one metrics.jsonl line per step
            if (r.skipped() != null) {
                env.log().warn("step {}: update skipped: {}", r.step(), r.skipped());
            }
            env.publish(s, new TrainingEvent.StepCompleted(r.runId(), r.step(), r.loss(), r.lrUnet(), r.lrTextEncoder(), r.gradNorm(),
                    r.samplesPerS(), r.computeSeconds(), r.commSeconds(), r.optimizerSeconds(), r.valLoss(), r.skipped()));
            env.folder().tell(new RunFolder.AppendStep(new StepMetrics(r.step(), r.loss(), r.lrUnet(), r.lrTextEncoder(), r.gradNorm(),
                    r.samplesPerS(), r.computeSeconds(), r.commSeconds(), r.optimizerSeconds(), r.valLoss(), r.skipped())));
        }
        return Behaviors.same();
    }

    /** The next generation starts from this checkpoint; waiting spares are admitted here (grow), unless it is the last. */
    private static Behavior<Object> onCheckpoint(Env env, RunState s, Set<Integer> finished, Set<Integer> answered, CheckpointCommitted k) {
        if (k.runId() != env.runId() || k.generation() != s.generation()) {
            return Behaviors.same();
        }
        RunState next = s.committed(k.path(), k.step());
        int spares = next.workers().available().size() - next.ranks().size();
        boolean stopping = next.controls().stopPending() || next.controls().stopStep() >= 0; // a stop's checkpoint: the run ends here
        if (k.step() < k.totalSteps() && !stopping && next.ranks().size() < env.settings().maxWorkers() && spares > 0) {
            return abort(env, next.growing(true), "grow: " + spares + " worker(s) waiting, admitted at step " + k.step(), answered);
        }
        return running(env, next, finished, answered);
    }

    /**
     * A rank's node got SIGTERM: it is lost for the next generations from now on, but this generation
     * goes on to the step boundary where the ranks (an all-reduced flag in the training loop, so every
     * rank stops after the same step) commit a checkpoint and end it; their GenerationEnded answers
     * then start the next generation, from that checkpoint, on the others. Telling the ranks to stop
     * at a step from here could not work as well: the reports reach this actor a step or more late.
     */
    private static RunState onLeaving(Env env, RunState s, WorkerLeaving m) {
        if (m.runId() != env.runId() || m.generation() != s.generation() || m.rank() >= s.ranks().size()) {
            return s;
        }
        return Coordinator.lose(env, s, s.ranks().get(m.rank()), "is leaving (" + m.reason() + "): the generation ends with a"
                + " checkpoint at the next step boundary");
    }

    /**
     * Every rank is told to stop after the step in flight; the ranks agree on that step among themselves
     * (the same all-reduced flag as a leaving worker's), commit its checkpoint and end the generation,
     * and its end then stops the run ({@link #afterAbort}) instead of starting the next generation.
     */
    private static Behavior<Object> onStopAtCheckpoint(Env env, RunState s, Set<Integer> finished, Set<Integer> answered,
            Coordinator.StopAtCheckpoint m) {
        if (!s.stopping().isEmpty()) {
            return Behaviors.same();
        }
        env.log().warn("stopping ({}): every rank commits a checkpoint after the step in flight", m.reason());
        var stop = new WorkerProtocol.CheckpointAndStop(env.runId(), s.generation(), m.reason());
        owing(s, answered).forEach(r -> env.tell(s.ranks().get(r), stop));
        return running(env, s.stopAtCheckpoint(m.reason()), finished, answered);
    }

    /**
     * A survivor's GenerationEnded may overtake rank 0's CheckpointCommitted (they come from different
     * nodes): a checkpoint of this generation committed while it ends is still where the next one starts.
     */
    private static RunState onCommittedWhileAborting(Env env, RunState s, CheckpointCommitted k) {
        return k.runId() != env.runId() || k.generation() != s.generation() ? s : s.committed(k.path(), k.step());
    }

    private static Behavior<Object> onGenerationEnded(Env env, RunState s, Set<Integer> answered, GenerationEnded e) {
        if (e.runId() != env.runId() || e.generation() != s.generation()) {
            return Behaviors.same();
        }
        RunState next = s.withWorkers(s.workers().back(e.worker(), e.dataAddress()));
        return e.stopStatus() != 0 ? Coordinator.failOnInput(env, next, e)
                : abort(env, next, "rank " + e.rank() + " failed: " + e.message(), RunState.plus(answered, e.rank()));
    }

    private static Behavior<Object> onRunEnded(Env env, RunState s, Set<Integer> finished, Set<Integer> answered, RunEnded e) {
        if (e.runId() != env.runId()) {
            return Behaviors.same();
        }
        if (!e.ok()) {
            return Coordinator.fail(env, s, "rank " + e.rank() + " failed: " + e.message());
        }
        Set<Integer> now = RunState.plus(finished, e.rank());
        if (now.size() < s.ranks().size()) {
            return running(env, s, now, answered);
        }
        int stopStep = s.controls().stopStep();
        String message = stopStep >= 0
                ? "stopped by a control request after step " + stopStep + " of " + env.totalSteps() + "; model in "
                        + env.settings().out().resolve("final") + ", checkpoint " + s.checkpoint() + " (on rank 0's node) resumes it"
                : "finished; model in " + env.settings().out().resolve("final") + " (on rank 0's node)";
        return Coordinator.finish(env, s, onDisk -> new TrainingEvent.RunFinished(env.runId(), true, message));
    }

    // ---- aborting ----

    /** Ends the generation: every rank that has not answered and is not known lost is told to stop and must answer. */
    private static Behavior<Object> abort(Env env, RunState s, String reason, Set<Integer> answered) {
        env.log().warn("generation {} ends: {}", s.generation(), reason);
        var stop = new WorkerProtocol.AbortGeneration(env.runId(), s.generation(), reason);
        owing(s, answered).forEach(r -> env.tell(s.ranks().get(r), stop));
        env.timers().startSingleTimer(Timeout.ABORT, env.settings().timeouts().abort());
        return afterAnswer(env, s.endingFor(reason), answered);
    }

    /** The ranks that still owe an answer to the abort: not answered, not known lost. */
    private static List<Integer> owing(RunState s, Set<Integer> answered) {
        return IntStream.range(0, s.ranks().size()).filter(r -> !answered.contains(r) && !s.workers().lost().contains(s.ranks().get(r)))
                .boxed().toList();
    }

    private static Behavior<Object> afterAnswer(Env env, RunState s, Set<Integer> answered) {
        return owing(s, answered).isEmpty() ? afterAbort(env, s) : aborting(env, s, answered);
    }

    private static Behavior<Object> onAbortAnswered(Env env, RunState s, Set<Integer> answered, GenerationEnded e) {
        if (e.runId() != env.runId() || e.generation() != s.generation()) {
            return Behaviors.same();
        }
        return e.stopStatus() != 0 ? Coordinator.failOnInput(env, s, e)
                : afterAnswer(env, s.withWorkers(s.workers().back(e.worker(), e.dataAddress())), RunState.plus(answered, e.rank()));
    }

    /** A rank finished the last step as the others aborted: it counts as answered, and it leaves. */
    private static Behavior<Object> onFinishedWhileAborting(Env env, RunState s, Set<Integer> answered, RunEnded e) {
        if (e.runId() != env.runId() || !e.ok()) {
            return Behaviors.same();
        }
        return afterAnswer(env, s.withWorkers(s.workers().left(s.ranks().get(e.rank()))), RunState.plus(answered, e.rank()));
    }

    private static Behavior<Object> onAbortTimeout(Env env, RunState s, Set<Integer> answered) {
        RunState next = s;
        String how = "did not answer the abort within " + seconds(env.settings().timeouts().abort());
        for (int r = 0; r < s.ranks().size(); r++) {
            if (!answered.contains(r)) {
                next = Coordinator.lose(env, next, s.ranks().get(r), how);
            }
        }
        return afterAbort(env, next);
    }

    /** After an abort: the next generation if enough workers remain, else wait for new ones. */
    private static Behavior<Object> afterAbort(Env env, RunState s) {
        env.timers().cancel(Timeout.ABORT);
        if (!s.stopping().isEmpty()) {
            return Coordinator.fail(env, s, "stopped (" + s.stopping() + ") at a checkpoint"); // the launcher's SIGTERM
        }
        if (s.controls().stopStep() >= 0) { // every rank applied a stop, yet the generation ended before the run did
            return Coordinator.fail(env, s, "stopped by a control request after step " + s.controls().stopStep()
                    + ", but the generation ended before the final model was written (" + s.reason() + ")");
        }
        if (!s.growing() && s.ranks().stream().noneMatch(s.workers().lost()::contains)) {
            return Coordinator.fail(env, s, s.reason()); // every rank is alive: the failure is in the run itself, not the cluster
        }
        RunState next = s.growing(false);
        return next.workers().available().size() >= env.settings().minWorkers() ? Coordinator.plan(env, next, next.reason())
                : Coordinator.waitForWorkers(env, next, next.reason());
    }
}
