package dev.dreamcluster.coordinator;

import akka.actor.Address;
import akka.actor.typed.ActorRef;
import dev.dreamcluster.protocol.CoordinatorProtocol;
import dev.dreamcluster.protocol.DataPlane;
import dev.dreamcluster.protocol.TrainingEvent;
import dev.dreamcluster.protocol.WorkerProtocol;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * What the coordinator knows between two messages. Immutable: a handler returns the next phase with
 * a new RunState, so no phase sees another's half-made change and nothing is shared through fields.
 * What only one phase counts (plans accepted, ranks finished, aborts answered) is passed to that
 * phase alone.
 *
 * @param workers every worker found, which of them can take a rank, and which are lost
 * @param subscribers the trusted event subscribers (launchers, monitors) registered now
 * @param generation the current generation, -1 before the first plan
 * @param ranks the current generation's workers by rank; kept until the next generation is assigned,
 *     so that a late report is still checked against its own rank's node
 * @param planHash the current generation's plan hash
 * @param reason why the current generation started ("start", "rejoin: ...", why the one before ended),
 *     or, once it is aborted, why it ends
 * @param growing the generation ends to admit waiting workers, not because a rank was lost
 * @param checkpoint the last checkpoint this run committed, else the one it resumed ("" for none)
 * @param checkpointStep the step of {@code checkpoint} once this run committed one, 0 before
 * @param stopping why the run stops once the current generation has ended at a checkpoint (the launcher
 *     got SIGTERM), "" while it is not stopping: the generation's end then stops the run instead of
 *     starting the next one
 * @param controls the users' control requests: numbered, not yet applied, and what the applied ones left
 */
record RunState(Workers workers, Set<ActorRef<TrainingEvent>> subscribers, int generation, List<ActorRef<WorkerProtocol.Command>> ranks,
        String planHash, String reason, boolean growing, String checkpoint, int checkpointStep, String stopping, Controls controls) {

    /** Before any worker is known: the run resumes {@code resume} ("" for none). */
    static RunState start(String resume) {
        return new RunState(Workers.NONE, Set.of(), -1, List.of(), "", "", false, resume, 0, "", Controls.NONE);
    }

    RunState withWorkers(Workers w) {
        return new RunState(w, subscribers, generation, ranks, planHash, reason, growing, checkpoint, checkpointStep, stopping, controls);
    }

    RunState withSubscribers(Set<ActorRef<TrainingEvent>> s) {
        return new RunState(workers, Set.copyOf(s), generation, ranks, planHash, reason, growing, checkpoint, checkpointStep, stopping, controls);
    }

    /** The next generation is being planned, for {@code why}; its ranks are assigned once the plan is there. */
    RunState nextGeneration(String why) {
        return new RunState(workers, subscribers, generation + 1, ranks, planHash, why, growing, checkpoint, checkpointStep, stopping, controls);
    }

    RunState assigned(List<ActorRef<WorkerProtocol.Command>> r, String hash) {
        return new RunState(workers, subscribers, generation, List.copyOf(r), hash, reason, growing, checkpoint, checkpointStep, stopping, controls);
    }

    RunState endingFor(String why) {
        return new RunState(workers, subscribers, generation, ranks, planHash, why, growing, checkpoint, checkpointStep, stopping, controls);
    }

    RunState growing(boolean g) {
        return new RunState(workers, subscribers, generation, ranks, planHash, reason, g, checkpoint, checkpointStep, stopping, controls);
    }

    RunState stopAtCheckpoint(String why) {
        return new RunState(workers, subscribers, generation, ranks, planHash, reason, growing, checkpoint, checkpointStep, why, controls);
    }

    RunState committed(String path, int step) {
        return new RunState(workers, subscribers, generation, ranks, planHash, reason, growing, path, step, stopping, controls);
    }

    RunState withControls(Controls c) {
        return new RunState(workers, subscribers, generation, ranks, planHash, reason, growing, checkpoint, checkpointStep, stopping, c);
    }

    /**
     * The users' control requests ({@link dev.dreamcluster.protocol.RunControl}) as the coordinator
     * tracks them. A request stays pending until rank 0 reports it applied; a generation that ends
     * first leaves it pending, and the next generation is sent every pending request again, from
     * index 0 (a paused run's next generation is paused again first).
     *
     * @param lastSeq the number of the newest request (requests are numbered 1, 2, ... within the run)
     * @param pending requested, not applied yet, in request order
     * @param sent how many requests the current generation was sent (its next request's index)
     * @param paused a PAUSE was applied and no RESUME since
     * @param stopStep the step after which a STOP request ended the run, -1 while none did
     */
    record Controls(long lastSeq, List<Pending> pending, int sent, boolean paused, int stopStep, Pending prompts, int promptsStep) {
        static final Controls NONE = new Controls(0, List.of(), 0, false, -1, null, -1);

        record Pending(long seq, dev.dreamcluster.protocol.RunControl.Action action, String prompts, String promptsFormat) {}

        boolean stopPending() {
            return pending.stream().anyMatch(p -> p.action() == dev.dreamcluster.protocol.RunControl.Action.STOP);
        }

        /** Whether the run will be paused once its pending requests are applied. */
        boolean pausedAfterPending() {
            boolean p = paused;
            for (Pending q : pending) {
                if (q.action() == dev.dreamcluster.protocol.RunControl.Action.PAUSE) {
                    p = true;
                } else if (q.action() == dev.dreamcluster.protocol.RunControl.Action.RESUME) {
                    p = false;
                }
            }
            return p;
        }

        Controls requested(Pending p) {
            List<Pending> next = new java.util.ArrayList<>(pending);
            next.add(p);
            return new Controls(p.seq(), List.copyOf(next), sent, paused, stopStep, prompts, promptsStep);
        }

        Controls sentOne() {
            return new Controls(lastSeq, pending, sent + 1, paused, stopStep, prompts, promptsStep);
        }

        /**
         * A new generation that starts from the checkpoint of {@code fromStep}: nothing sent to it yet;
         * sample prompts applied after that checkpoint are not in it, so they are pending again (first,
         * in the order the ranks applied them).
         */
        Controls newGeneration(int fromStep) {
            List<Pending> next = pending;
            if (prompts != null && promptsStep > fromStep && pending.stream().noneMatch(p -> p.seq() == prompts.seq())) {
                next = java.util.stream.Stream.concat(java.util.stream.Stream.of(prompts), pending.stream()).toList();
            }
            return new Controls(lastSeq, next, 0, paused, stopStep, prompts, promptsStep);
        }

        /**
         * Request {@code seq} was applied after {@code step}: it and the ones before it in the list (the
         * order every rank applies them in) leave the pending list.
         */
        Controls applied(long seq, dev.dreamcluster.protocol.RunControl.Action a, int step) {
            int at = java.util.stream.IntStream.range(0, pending.size()).filter(i -> pending.get(i).seq() == seq).findFirst().orElse(-1);
            Pending done = at < 0 ? null : pending.get(at);
            List<Pending> next = at < 0 ? pending : List.copyOf(pending.subList(at + 1, pending.size()));
            boolean nowPaused = a == dev.dreamcluster.protocol.RunControl.Action.PAUSE ? true
                    : a == dev.dreamcluster.protocol.RunControl.Action.RESUME ? false : paused;
            boolean isPrompts = a == dev.dreamcluster.protocol.RunControl.Action.SAMPLE_PROMPTS && done != null;
            return new Controls(lastSeq, next, sent, nowPaused, a == dev.dreamcluster.protocol.RunControl.Action.STOP ? step : stopStep,
                    isPrompts ? done : prompts, isPrompts ? step : promptsStep);
        }
    }

    /**
     * What a failed run names as its last committed checkpoint: the one this run committed, else the
     * newest complete one on disk ({@code onDisk}, null when there is no checkpoints folder), else the
     * one it resumed.
     */
    String lastCheckpoint(String onDisk) {
        boolean none = checkpoint == null || checkpoint.isEmpty();
        if (!none && generation >= 0 && checkpointStep > 0) {
            return checkpoint;
        }
        return onDisk != null ? onDisk : none ? "none" : checkpoint;
    }

    /**
     * The workers the coordinator has met, for the whole run.
     *
     * @param asked sent an Identify (each is asked once)
     * @param available able to take a rank, with its current ring address, in arrival order
     * @param offers what each offered for the data plane when it identified itself (an NCCL id on a GPU)
     * @param lost removed, unreachable, or silent through an abort: never available again
     */
    record Workers(Set<ActorRef<WorkerProtocol.Command>> asked, Map<ActorRef<WorkerProtocol.Command>, String> available,
            Map<ActorRef<WorkerProtocol.Command>, DataPlane.Offer> offers, Set<ActorRef<WorkerProtocol.Command>> lost) {
        static final Workers NONE = new Workers(Set.of(), Map.of(), Map.of(), Set.of());

        Workers ask(ActorRef<WorkerProtocol.Command> w) {
            return new Workers(plus(asked, w), available, offers, lost);
        }

        Workers identified(CoordinatorProtocol.WorkerIdentified id) {
            return new Workers(asked, put(available, id.worker(), id.dataAddress()), put(offers, id.worker(), id.offer()), lost);
        }

        /** A rank that ended its generation is available again, at its new ring address. */
        Workers back(ActorRef<WorkerProtocol.Command> w, String dataAddress) {
            if (lost.contains(w)) {
                return this; // a leaving worker (SIGTERM) still answers its generation's end: it must not take a rank again
            }
            return new Workers(asked, put(available, w, dataAddress), offers, lost);
        }

        Workers left(ActorRef<WorkerProtocol.Command> w) {
            return new Workers(asked, remove(available, w), offers, lost);
        }

        Workers lose(ActorRef<WorkerProtocol.Command> w) {
            return new Workers(asked, remove(available, w), offers, plus(lost, w));
        }

        /** The run's workers (ranks, then available) on the node at {@code a}: one per JVM in practice. */
        List<ActorRef<WorkerProtocol.Command>> at(Address a, List<ActorRef<WorkerProtocol.Command>> ranks) {
            Set<ActorRef<WorkerProtocol.Command>> all = new LinkedHashSet<>(ranks);
            all.addAll(available.keySet());
            return all.stream().filter(w -> w.path().address().equals(a)).toList();
        }
    }

    // Copies, not shared updates: each state keeps the collections it was made with. Insertion order
    // is kept (workers are told and reported in the order they came). Sizes are the cluster's: small.

    static <T> Set<T> plus(Set<T> set, T item) {
        Set<T> s = new LinkedHashSet<>(set);
        s.add(item);
        return Collections.unmodifiableSet(s);
    }

    private static <K, V> Map<K, V> put(Map<K, V> map, K key, V value) {
        Map<K, V> m = new LinkedHashMap<>(map);
        m.put(key, value);
        return Collections.unmodifiableMap(m);
    }

    private static <K, V> Map<K, V> remove(Map<K, V> map, K key) {
        Map<K, V> m = new LinkedHashMap<>(map);
        m.remove(key);
        return Collections.unmodifiableMap(m);
    }
}
