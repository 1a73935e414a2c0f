package dev.dreamcluster.coordinator;

import akka.actor.typed.ActorRef;
import akka.actor.typed.Behavior;
import akka.actor.typed.javadsl.ActorContext;
import akka.actor.typed.javadsl.Behaviors;
import akka.actor.typed.pubsub.Topic;
import akka.actor.typed.receptionist.Receptionist;
import akka.cluster.ClusterEvent;
import akka.cluster.typed.Cluster;
import akka.cluster.typed.Subscribe;
import dev.dreamcluster.protocol.CoordinatorProtocol;
import dev.dreamcluster.protocol.RunPlan;
import dev.dreamcluster.protocol.TrainingEvent;
import dev.dreamcluster.protocol.WorkerProtocol;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;

/**
 * Drives one training run (run as a cluster singleton on role "coordinator"). Phases: waiting for
 * min_workers workers to register with the Receptionist and report their data-plane address, then
 * assigning ranks and the plan (each worker recomputes the plan hash and accepts or refuses), then
 * running (step reports become TrainingEvents and metrics.jsonl lines), then finished. A worker
 * that becomes unreachable or fails stops the run with a message naming it and the last checkpoint.
 */
public final class Coordinator {
    public sealed interface Command {}

    private record Listed(Receptionist.Listing listing) implements Command {}

    private record FromWorker(CoordinatorProtocol.Command message) implements Command {}

    private record MemberChanged(ClusterEvent.MemberEvent event) implements Command {}

    private record ReachabilityChanged(ClusterEvent.ReachabilityEvent event) implements Command {}

    /** Stop the run (Ctrl-C in the embedded launcher). */
    public record Stop(String reason) implements Command, dev.dreamcluster.protocol.CborSerializable {}

    private final ActorContext<Command> ctx;
    private final CoordinatorSettings settings;
    private final ActorRef<Topic.Command<TrainingEvent>> events;
    private final ActorRef<CoordinatorProtocol.Command> replies;
    private final Set<ActorRef<WorkerProtocol.Command>> asked = new HashSet<>();
    private final Map<ActorRef<WorkerProtocol.Command>, String> identified = new LinkedHashMap<>();
    private final Map<ActorRef<WorkerProtocol.Command>, dev.dreamcluster.protocol.DataPlane.Offer> offers = new LinkedHashMap<>();
    private final List<ActorRef<WorkerProtocol.Command>> ranks = new ArrayList<>();
    private final Set<Integer> accepted = new HashSet<>();
    private final Map<Integer, Boolean> ended = new HashMap<>();

    private Coordinator(ActorContext<Command> ctx, CoordinatorSettings settings) {
        this.ctx = ctx;
        this.settings = settings;
        this.events = ctx.spawn(Topic.create(TrainingEvent.class, TrainingEvent.TOPIC), "events");
        this.replies = ctx.messageAdapter(CoordinatorProtocol.Command.class, FromWorker::new);
        ctx.getSystem().receptionist().tell(Receptionist.subscribe(WorkerProtocol.SERVICE,
                ctx.messageAdapter(Receptionist.Listing.class, Listed::new)));
        Cluster cluster = Cluster.get(ctx.getSystem());
        cluster.subscriptions().tell(Subscribe.create(ctx.messageAdapter(ClusterEvent.MemberEvent.class, MemberChanged::new),
                ClusterEvent.MemberEvent.class));
        cluster.subscriptions().tell(Subscribe.create(ctx.messageAdapter(ClusterEvent.ReachabilityEvent.class, ReachabilityChanged::new),
                ClusterEvent.ReachabilityEvent.class));
    }

    public static Behavior<Command> create(CoordinatorSettings settings) {
        return Behaviors.setup(ctx -> new Coordinator(ctx, settings).waiting());
    }

    // ---- phases ----

    private Behavior<Command> waiting() {
        return Behaviors.receive(Command.class)
                .onMessage(Listed.class, this::onListed)
                .onMessage(FromWorker.class, this::onWaitingReply)
                .onMessage(MemberChanged.class, this::onMember)
                .onMessage(ReachabilityChanged.class, m -> Behaviors.same())
                .onMessage(Stop.class, this::onStop)
                .build();
    }

    private Behavior<Command> assigning() {
        return Behaviors.receive(Command.class)
                .onMessage(Listed.class, m -> Behaviors.same())
                .onMessage(FromWorker.class, this::onAssigningReply)
                .onMessage(MemberChanged.class, this::onMember)
                .onMessage(ReachabilityChanged.class, this::onReachability)
                .onMessage(Stop.class, this::onStop)
                .build();
    }

    private Behavior<Command> running() {
        return Behaviors.receive(Command.class)
                .onMessage(Listed.class, m -> Behaviors.same())
                .onMessage(FromWorker.class, this::onRunningReport)
                .onMessage(MemberChanged.class, this::onMember)
                .onMessage(ReachabilityChanged.class, this::onReachability)
                .onMessage(Stop.class, this::onStop)
                .build();
    }

    private Behavior<Command> finished() {
        return Behaviors.receive(Command.class)
                .onMessage(MemberChanged.class, this::onMemberAfterRun)
                .onAnyMessage(m -> Behaviors.same())
                .build();
    }

    // ---- waiting ----

    private Behavior<Command> onListed(Listed m) {
        for (ActorRef<WorkerProtocol.Command> w : m.listing().getServiceInstances(WorkerProtocol.SERVICE)) {
            if (asked.add(w)) {
                w.tell(new WorkerProtocol.Identify(replies));
            }
        }
        return Behaviors.same();
    }

    private Behavior<Command> onWaitingReply(FromWorker m) {
        if (m.message() instanceof CoordinatorProtocol.WorkerIdentified id) {
            identified.put(id.worker(), id.dataAddress());
            offers.put(id.worker(), id.offer());
            ctx.getLog().info("worker {} at {} ({} of {})", id.worker().path(), id.dataAddress(), identified.size(), settings.minWorkers());
            if (identified.size() >= settings.minWorkers()) {
                return assignPlan();
            }
        }
        return Behaviors.same();
    }

    /** Ranks in a deterministic order (actor path), then the plan to every rank. */
    private Behavior<Command> assignPlan() {
        identified.keySet().stream().sorted(Comparator.comparing(r -> r.path().toString())).limit(settings.minWorkers())
                .forEach(ranks::add);
        List<String> peers = ranks.stream().map(identified::get).toList();
        dev.dreamcluster.protocol.DataPlane dataPlane;
        try { // rank 0's NCCL id when every rank offers one (and --collective allows), else the ring
            dataPlane = dev.dreamcluster.protocol.DataPlane.choose(settings.collective(), ranks.stream().map(offers::get).toList(),
                    line -> ctx.getLog().info(line));
        } catch (dev.dreamcluster.config.ConfigError e) {
            return fail(e.getMessage());
        }
        RunPlan plan = new RunPlan(settings.runId(), settings.planHash(), peers, settings.trainJson().toString(),
                settings.maxSteps(), settings.out().toString(), dataPlane);
        for (int r = 0; r < ranks.size(); r++) {
            ranks.get(r).tell(new WorkerProtocol.AssignPlan(plan, r, replies));
        }
        return assigning();
    }

    // ---- assigning ----

    private Behavior<Command> onAssigningReply(FromWorker m) {
        if (m.message() instanceof CoordinatorProtocol.PlanAccepted a && a.runId() == settings.runId()) {
            accepted.add(a.rank());
            if (accepted.size() == ranks.size()) {
                ranks.forEach(w -> w.tell(new WorkerProtocol.StartRun(settings.runId())));
                events.tell(Topic.publish(new TrainingEvent.RunStarted(settings.runId(), ranks.size(), settings.planHash())));
                return running();
            }
        } else if (m.message() instanceof CoordinatorProtocol.PlanRefused r && r.runId() == settings.runId()) {
            return fail("rank " + r.rank() + " refused the plan: " + r.reason());
        }
        return Behaviors.same();
    }

    // ---- running ----

    private Behavior<Command> onRunningReport(FromWorker m) {
        if (m.message() instanceof CoordinatorProtocol.StepReported s && s.runId() == settings.runId() && s.rank() == 0) {
            TrainingEvent.StepCompleted e = new TrainingEvent.StepCompleted(s.runId(), s.step(), s.loss(), s.lrUnet(),
                    s.lrTextEncoder(), s.gradNorm(), s.samplesPerS(), s.computeSeconds(), s.commSeconds(), s.optimizerSeconds(),
                    s.valLoss());
            events.tell(Topic.publish(e));
            appendMetrics(e);
        } else if (m.message() instanceof CoordinatorProtocol.RunEnded e && e.runId() == settings.runId()) {
            if (!e.ok()) {
                return fail("rank " + e.rank() + " failed: " + e.message());
            }
            ended.put(e.rank(), true);
            if (ended.size() == ranks.size()) {
                events.tell(Topic.publish(new TrainingEvent.RunFinished(settings.runId(), true,
                        "finished; model in " + settings.out().resolve("final"))));
                return finished();
            }
        }
        return Behaviors.same();
    }

    private void appendMetrics(TrainingEvent.StepCompleted e) {
        String line = String.format(java.util.Locale.ROOT,
                "{\"step\":%d,\"loss\":%s,\"lr_unet\":%s,\"lr_text_encoder\":%s,\"grad_norm\":%s,\"samples_per_s\":%s,"
                        + "\"compute_s\":%s,\"comm_s\":%s,\"optimizer_s\":%s%s}%n",
                e.step(), e.loss(), e.lrUnet(), e.lrTextEncoder(), e.gradNorm(), e.samplesPerS(), e.computeSeconds(),
                e.commSeconds(), e.optimizerSeconds(), Double.isNaN(e.valLoss()) ? "" : ",\"val_loss\":" + e.valLoss());
        try {
            Files.createDirectories(settings.out());
            Files.writeString(settings.out().resolve("metrics.jsonl"), line, StandardCharsets.UTF_8, StandardOpenOption.CREATE,
                    StandardOpenOption.APPEND);
        } catch (IOException ex) {
            ctx.getLog().warn("cannot append to {}: {}", settings.out().resolve("metrics.jsonl"), ex.toString());
        }
    }

    // ---- membership and failure ----

    private Behavior<Command> onMember(MemberChanged m) {
        onMemberAfterRun(m);
        if (m.event() instanceof ClusterEvent.MemberRemoved removed && isWorker(removed.member().address())) {
            return lost(removed.member().address().toString());
        }
        return Behaviors.same();
    }

    /** Membership is still published after the run (workers leaving), but nothing is lost any more. */
    private Behavior<Command> onMemberAfterRun(MemberChanged m) {
        var member = m.event().member();
        events.tell(Topic.publish(new TrainingEvent.MemberChanged(member.address().toString(), String.join(",", member.getRoles()),
                m.event().getClass().getSimpleName())));
        return Behaviors.same();
    }

    private Behavior<Command> onReachability(ReachabilityChanged m) {
        if (m.event() instanceof ClusterEvent.UnreachableMember u && isWorker(u.member().address())) {
            return lost(u.member().address().toString());
        }
        return Behaviors.same();
    }

    private boolean isWorker(akka.actor.Address a) {
        return ranks.stream().anyMatch(w -> w.path().address().equals(a));
    }

    private Behavior<Command> lost(String address) {
        events.tell(Topic.publish(new TrainingEvent.WorkerLost(settings.runId(), address)));
        return fail("worker " + address + " was lost");
    }

    private Behavior<Command> onStop(Stop s) {
        return fail("stopped: " + s.reason());
    }

    /** Tells every rank to stop and publishes the end, naming the last committed checkpoint. */
    private Behavior<Command> fail(String why) {
        String message = why + "; last committed checkpoint: " + lastCheckpoint();
        ctx.getLog().error("run {} stopped: {}", settings.runId(), message);
        ranks.forEach(w -> w.tell(new WorkerProtocol.StopRun(settings.runId(), why)));
        events.tell(Topic.publish(new TrainingEvent.RunFinished(settings.runId(), false, message)));
        return finished();
    }

    private String lastCheckpoint() {
        Path dir = settings.out().resolve("checkpoints");
        if (!Files.isDirectory(dir)) {
            return "none";
        }
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(p -> p.getFileName().toString().startsWith("step-")).filter(p -> Files.exists(p.resolve("trainer_state.json")))
                    .map(Path::toString).sorted().reduce((a, b) -> b).orElse("none");
        } catch (IOException e) {
            return "unknown (" + e.getMessage() + ")";
        }
    }
}
