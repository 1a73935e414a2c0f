package dev.dreamcluster.coordinator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import akka.actor.testkit.typed.javadsl.ActorTestKit;
import akka.actor.testkit.typed.javadsl.LoggingTestKit;
import akka.actor.testkit.typed.javadsl.TestProbe;
import akka.actor.typed.ActorRef;
import akka.actor.typed.pubsub.Topic;
import akka.actor.typed.receptionist.Receptionist;
import akka.cluster.MemberStatus;
import akka.cluster.typed.Cluster;
import akka.cluster.typed.ClusterSingleton;
import akka.cluster.typed.Join;
import akka.cluster.typed.SingletonActor;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import dev.dreamcluster.protocol.CoordinatorProtocol;
import dev.dreamcluster.protocol.SenderGate;
import dev.dreamcluster.protocol.TrainingEvent;
import dev.dreamcluster.protocol.WorkerProtocol;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The coordinator in a real one-node cluster (Artery on loopback, every message serialized as CBOR):
 * discovery through the Receptionist, the cluster singleton, rank and plan distribution, refusal on a
 * plan-hash mismatch, worker loss, and TrainingEvents on the topic. Workers are test probes speaking
 * the worker protocol.
 */
class CoordinatorTest {
    static final Config CONFIG = ConfigFactory.parseString("""
            akka.actor.provider = cluster
            akka.actor.serialize-messages = on
            akka.remote.artery.canonical.hostname = 127.0.0.1
            akka.remote.artery.canonical.port = 0
            akka.cluster.roles = [coordinator, worker]
            akka.cluster.jmx.multi-mbeans-in-same-jvm = on
            akka.coordinated-shutdown.exit-jvm = off
            """).withFallback(ConfigFactory.load());

    static ActorTestKit kit;
    static TestProbe<TrainingEvent> events;

    @BeforeAll
    static void cluster() {
        kit = ActorTestKit.create("dreamcluster", CONFIG);
        Cluster c = Cluster.get(kit.system());
        c.manager().tell(Join.create(c.selfMember().address()));
        TestProbe<Object> p = kit.createTestProbe();
        p.awaitAssert(Duration.ofSeconds(10), () -> {
            assertEquals(MemberStatus.up(), c.selfMember().status());
            return null;
        });
        events = kit.createTestProbe();
        ActorRef<Topic.Command<TrainingEvent>> topic = kit.spawn(Topic.create(TrainingEvent.class, TrainingEvent.TOPIC));
        topic.tell(Topic.subscribe(events.getRef()));
    }

    @AfterAll
    static void stop() {
        kit.shutdownTestKit();
    }

    static TestProbe<WorkerProtocol.Command> worker() {
        TestProbe<WorkerProtocol.Command> w = kit.createTestProbe();
        kit.system().receptionist().tell(Receptionist.register(WorkerProtocol.SERVICE, w.getRef()));
        return w;
    }

    /** The next event of {@code type}, skipping others (membership events arrive at any time). */
    static <T extends TrainingEvent> T nextEvent(Class<T> type) {
        return type.cast(events.fishForMessage(Duration.ofSeconds(15), e -> type.isInstance(e)
                ? akka.actor.testkit.typed.javadsl.FishingOutcomes.complete()
                : akka.actor.testkit.typed.javadsl.FishingOutcomes.continueAndIgnore()).get(0));
    }

    @Test
    void shouldDiscoverWorkersAssignRanksAndReportSteps(@TempDir Path out) throws Exception {
        TestProbe<WorkerProtocol.Command> w0 = worker();
        TestProbe<WorkerProtocol.Command> w1 = worker();
        CoordinatorSettings s = new CoordinatorSettings(2, 2, 2, 101, "abc123", List.of("world\t2"), "{\"train_config\":{\"max_steps\":3}}", "", out,
                CoordinatorSettings.Timeouts.DEFAULT);
        ActorRef<Coordinator.Command> coord = ClusterSingleton.get(kit.system())
                .init(SingletonActor.of(Coordinator.create(s), "coordinator-101"));
        for (TestProbe<WorkerProtocol.Command> w : List.of(w0, w1)) {
            w.fishForMessage(Duration.ofSeconds(15), m -> m instanceof WorkerProtocol.Identify id && from(id, "coordinator-101") ? reply(id,
                    new CoordinatorProtocol.WorkerIdentified(w.getRef(), "127.0.0.1:" + (w == w0 ? 7000 : 7001)), w) : ignore());
        }
        WorkerProtocol.AssignPlan a0 = w0.expectMessageClass(WorkerProtocol.AssignPlan.class);
        WorkerProtocol.AssignPlan a1 = w1.expectMessageClass(WorkerProtocol.AssignPlan.class);
        assertEquals(2, a0.plan().worldSize());
        assertEquals("abc123", a0.plan().planHash());
        assertEquals(1, a0.rank() + a1.rank(), "ranks 0 and 1");
        assertEquals(a0.plan(), a1.plan());
        assertEquals(List.of("world\t2"), a0.plan().manifest(), "the manifest travels with the plan");
        assertEquals("{\"train_config\":{\"max_steps\":3}}", a0.plan().runConfig(), "the run config travels as data");
        assertEquals(a0.rank() == 0 ? "127.0.0.1:7000" : "127.0.0.1:7001", a0.plan().peers().get(0));
        SenderGate.tell(a0.replyTo(), new CoordinatorProtocol.PlanAccepted(101, a0.rank()), w0.getRef());
        SenderGate.tell(a1.replyTo(), new CoordinatorProtocol.PlanAccepted(101, a1.rank()), w1.getRef());
        w0.expectMessageClass(WorkerProtocol.StartRun.class);
        w1.expectMessageClass(WorkerProtocol.StartRun.class);
        TrainingEvent.RunStarted started = nextEvent(TrainingEvent.RunStarted.class);
        assertEquals(101, started.runId());
        assertEquals(3, started.totalSteps());
        SenderGate.tell(a0.replyTo(), new CoordinatorProtocol.StepReported(101, 0, 1, 0.5, 1e-4, 5e-5, 2.0, 8.0, 0.1, 0.02, 0.01, 0.4),
                w0.getRef());
        TrainingEvent.WorkerStepCompleted rank0 = nextEvent(TrainingEvent.WorkerStepCompleted.class);
        assertEquals(0, rank0.rank());
        assertEquals(0.1, rank0.computeSeconds());
        TrainingEvent.StepCompleted step = nextEvent(TrainingEvent.StepCompleted.class);
        assertEquals(1, step.step());
        assertEquals(0.5, step.loss());
        // every rank's split is published (only rank 0's step makes a StepCompleted and a metrics line)
        SenderGate.tell((a0.rank() == 1 ? a0 : a1).replyTo(), new CoordinatorProtocol.StepReported(101, 1, 1, 0.5, 1e-4, 5e-5, 2.0,
                8.0, 0.3, 0.04, 0.02, Double.NaN), w1.getRef());
        TrainingEvent.WorkerStepCompleted rank1 = nextEvent(TrainingEvent.WorkerStepCompleted.class);
        assertEquals(1, rank1.rank());
        assertEquals(0.3, rank1.computeSeconds());
        assertEquals(0.04, rank1.commSeconds());
        // a skipped step: a WARN line, and a metrics line that says why
        LoggingTestKit.warn("step 2: update skipped: non-finite gradients").expect(kit.system(), () -> {
            SenderGate.tell(a0.replyTo(), new CoordinatorProtocol.StepReported(101, 0, 2, 0.5, 0, 0, Double.NaN, 8.0, 0.1, 0.02, 0.01,
                    Double.NaN, "non-finite gradients"), w0.getRef());
            return null;
        });
        assertEquals("non-finite gradients", nextEvent(TrainingEvent.StepCompleted.class).skipped());
        a0.replyTo().tell(new CoordinatorProtocol.RunEnded(101, 0, false, "forged: no sender")); // ignored (SenderGate)
        // sent straight to the coordinator, around its sender gate: dropped (the run still ends ok below)
        LoggingTestKit.warn("worker messages count only through").expect(kit.system(), () -> {
            coord.<Object>unsafeUpcast().tell(new CoordinatorProtocol.RunEnded(101, 0, false, "forged around the gate"));
            return null;
        });
        SenderGate.tell(a0.replyTo(), new CoordinatorProtocol.RunEnded(101, 0, true, "done"), w0.getRef());
        SenderGate.tell(a1.replyTo(), new CoordinatorProtocol.RunEnded(101, 1, true, "done"), w1.getRef());
        TrainingEvent.RunFinished fin = nextEvent(TrainingEvent.RunFinished.class);
        assertTrue(fin.ok(), fin.message());
        assertTrue(Files.readString(out.resolve("metrics.jsonl")).contains("\"step\":1,\"loss\":0.5"));
        assertTrue(Files.readString(out.resolve("metrics.jsonl")).contains("\"val_loss\":0.4"));
        assertTrue(Files.readString(out.resolve("metrics.jsonl")).contains("\"step\":2,\"loss\":0.5,\"lr_unet\":0.0,\"lr_text_encoder\":0.0,"
                + "\"samples_per_s\":8.0,\"compute_s\":0.1,\"comm_s\":0.02,\"optimizer_s\":0.01,\"skipped\":\"non-finite gradients\"}"),
                "metrics.jsonl is complete once the end is published");
        coord.tell(new Coordinator.Stop("test over")); // a finished singleton stays up and ignores the stop
        kit.system().receptionist().tell(Receptionist.deregister(WorkerProtocol.SERVICE, w0.getRef()));
        kit.system().receptionist().tell(Receptionist.deregister(WorkerProtocol.SERVICE, w1.getRef()));
    }

    /**
     * Users' control requests: numbered, sent to every rank in order (index 0, 1, ...), refused with
     * 409 when they cannot apply (counting the pending ones), published when requested and when rank 0
     * reports them applied, logged in metrics.jsonl; a STOP applied makes the run's end a finished one
     * that names the step; after the end every request is refused.
     */
    @Test
    void liveControlShouldReachEveryRankInOrderAndBeRefusedWhenItCannotApply(@TempDir Path out) throws Exception {
        TestProbe<WorkerProtocol.Command> w0 = worker();
        TestProbe<WorkerProtocol.Command> w1 = worker();
        CoordinatorSettings s = new CoordinatorSettings(2, 2, 2, 505, "hash-c", List.of("world\t2"), "{\"train_config\":{\"max_steps\":50}}",
                "", out, CoordinatorSettings.Timeouts.DEFAULT);
        ActorRef<Coordinator.Command> coord = kit.spawn(Coordinator.create(s), "coordinator-505");
        for (TestProbe<WorkerProtocol.Command> w : List.of(w0, w1)) {
            w.fishForMessage(Duration.ofSeconds(15), m -> m instanceof WorkerProtocol.Identify id && from(id, "coordinator-505") ? reply(id,
                    new CoordinatorProtocol.WorkerIdentified(w.getRef(), "127.0.0.1:" + (w == w0 ? 7500 : 7501)), w) : ignore());
        }
        WorkerProtocol.AssignPlan a0 = w0.expectMessageClass(WorkerProtocol.AssignPlan.class);
        WorkerProtocol.AssignPlan a1 = w1.expectMessageClass(WorkerProtocol.AssignPlan.class);
        TestProbe<WorkerProtocol.Command> rank0 = a0.rank() == 0 ? w0 : w1;
        var replyTo0 = (a0.rank() == 0 ? a0 : a1).replyTo();
        SenderGate.tell(a0.replyTo(), new CoordinatorProtocol.PlanAccepted(505, a0.rank()), w0.getRef());
        SenderGate.tell(a1.replyTo(), new CoordinatorProtocol.PlanAccepted(505, a1.rank()), w1.getRef());
        w0.expectMessageClass(WorkerProtocol.StartRun.class);
        w1.expectMessageClass(WorkerProtocol.StartRun.class);

        TestProbe<dev.dreamcluster.protocol.RunControl.Reply> replies = kit.createTestProbe();
        java.util.function.Function<dev.dreamcluster.protocol.RunControl.Action, dev.dreamcluster.protocol.RunControl.Reply> ask = a -> {
            coord.tell(new Coordinator.Control(new dev.dreamcluster.protocol.RunControl.Request(a, null, null, "test"), replies.getRef()));
            return replies.receiveMessage(Duration.ofSeconds(10));
        };
        var pause = ask.apply(dev.dreamcluster.protocol.RunControl.Action.PAUSE);
        assertEquals(202, pause.status(), pause.message());
        assertEquals(1, pause.seq());
        assertEquals("pause", nextEvent(TrainingEvent.ControlRequested.class).action());
        for (TestProbe<WorkerProtocol.Command> w : List.of(w0, w1)) {
            WorkerProtocol.Control c = w.expectMessageClass(WorkerProtocol.Control.class);
            assertEquals(List.of(0, 1L, dev.dreamcluster.protocol.RunControl.Action.PAUSE), List.of(c.index(), c.seq(), c.action()));
        }
        var again = ask.apply(dev.dreamcluster.protocol.RunControl.Action.PAUSE);
        assertEquals(409, again.status());
        assertTrue(again.message().contains("paused already"), again.message());
        var resume = ask.apply(dev.dreamcluster.protocol.RunControl.Action.RESUME);
        assertEquals(202, resume.status(), resume.message());
        assertEquals(2, resume.seq());
        for (TestProbe<WorkerProtocol.Command> w : List.of(w0, w1)) {
            WorkerProtocol.Control c = w.expectMessageClass(WorkerProtocol.Control.class);
            assertEquals(List.of(1, 2L), List.of(c.index(), c.seq()));
        }
        SenderGate.tell(replyTo0, new CoordinatorProtocol.ControlApplied(505, 0, 1, dev.dreamcluster.protocol.RunControl.Action.PAUSE, 4,
                ""), rank0.getRef());
        SenderGate.tell(replyTo0, new CoordinatorProtocol.ControlApplied(505, 0, 2, dev.dreamcluster.protocol.RunControl.Action.RESUME, 4,
                ""), rank0.getRef());
        TrainingEvent.ControlApplied applied = nextEvent(TrainingEvent.ControlApplied.class);
        assertEquals(List.of(1L, "pause", 4), List.of(applied.seq(), applied.action(), applied.step()));
        assertEquals(2, nextEvent(TrainingEvent.ControlApplied.class).seq());
        var notPaused = ask.apply(dev.dreamcluster.protocol.RunControl.Action.RESUME);
        assertEquals(409, notPaused.status());
        assertTrue(notPaused.message().contains("not paused"), notPaused.message());
        var stop = ask.apply(dev.dreamcluster.protocol.RunControl.Action.STOP);
        assertEquals(202, stop.status(), stop.message());
        assertEquals(3, stop.seq(), "refused requests take no number");
        assertEquals(409, ask.apply(dev.dreamcluster.protocol.RunControl.Action.CHECKPOINT).status(), "the run is stopping");
        SenderGate.tell(replyTo0, new CoordinatorProtocol.ControlApplied(505, 0, 3, dev.dreamcluster.protocol.RunControl.Action.STOP, 6,
                "final model in final"), rank0.getRef());
        SenderGate.tell(a0.replyTo(), new CoordinatorProtocol.RunEnded(505, a0.rank(), true, "done"), w0.getRef());
        SenderGate.tell(a1.replyTo(), new CoordinatorProtocol.RunEnded(505, a1.rank(), true, "done"), w1.getRef());
        TrainingEvent.RunFinished fin = nextEvent(TrainingEvent.RunFinished.class);
        assertTrue(fin.ok(), fin.message());
        assertTrue(fin.message().startsWith("stopped by a control request after step 6 of 50"), fin.message());
        var late = ask.apply(dev.dreamcluster.protocol.RunControl.Action.CHECKPOINT);
        assertEquals(409, late.status());
        assertEquals("the run has ended", late.message());
        List<String> lines = Files.readAllLines(out.resolve("metrics.jsonl"));
        assertEquals(List.of("pause", "resume", "stop"), lines.stream().map(l -> l.replaceAll(".*\"control\":\"([a-z_]+)\".*", "$1"))
                .toList(), lines.toString());
        kit.system().receptionist().tell(Receptionist.deregister(WorkerProtocol.SERVICE, w0.getRef()));
        kit.system().receptionist().tell(Receptionist.deregister(WorkerProtocol.SERVICE, w1.getRef()));
    }

    @Test
    void shouldStopTheRunWhenAWorkerRefusesThePlan(@TempDir Path out) throws Exception {
        TestProbe<WorkerProtocol.Command> w0 = worker();
        TestProbe<WorkerProtocol.Command> w1 = worker();
        CoordinatorSettings s = new CoordinatorSettings(2, 2, 2, 202, "hash-a", List.of("world\t2"), "{}", "", out, CoordinatorSettings.Timeouts.DEFAULT);
        ActorRef<Coordinator.Command> coord = kit.spawn(Coordinator.create(s), "coordinator-202");
        for (TestProbe<WorkerProtocol.Command> w : List.of(w0, w1)) {
            w.fishForMessage(Duration.ofSeconds(15), m -> m instanceof WorkerProtocol.Identify id && from(id, "coordinator-202")
                    ? respond(id, w) : ignore());
        }
        WorkerProtocol.AssignPlan a0 = w0.expectMessageClass(WorkerProtocol.AssignPlan.class);
        WorkerProtocol.AssignPlan a1 = w1.expectMessageClass(WorkerProtocol.AssignPlan.class);
        SenderGate.tell(a0.replyTo(), new CoordinatorProtocol.PlanAccepted(202, a0.rank()), w0.getRef());
        SenderGate.tell(a1.replyTo(), new CoordinatorProtocol.PlanRefused(202, a1.rank(), "plan hash hash-b differs from hash-a"),
                w1.getRef());
        w0.expectMessageClass(WorkerProtocol.StopRun.class);
        TrainingEvent.RunFinished fin = nextEvent(TrainingEvent.RunFinished.class);
        assertTrue(!fin.ok() && fin.message().contains("refused the plan") && fin.message().contains("last committed checkpoint"),
                fin.message());
        kit.stop(coord);
        kit.system().receptionist().tell(Receptionist.deregister(WorkerProtocol.SERVICE, w0.getRef()));
        kit.system().receptionist().tell(Receptionist.deregister(WorkerProtocol.SERVICE, w1.getRef()));
    }

    @Test
    void shouldStopTheRunWhenTooFewWorkersJoinInTime(@TempDir Path out) {
        TestProbe<WorkerProtocol.Command> w0 = worker();
        CoordinatorSettings s = new CoordinatorSettings(2, 2, 2, 404, "hash", List.of("world\t2"), "{}", "", out,
                new CoordinatorSettings.Timeouts(Duration.ofSeconds(5), Duration.ofMinutes(1), Duration.ofMinutes(1), Duration.ofSeconds(2)));
        ActorRef<Coordinator.Command> coord = kit.spawn(Coordinator.create(s), "coordinator-404");
        w0.fishForMessage(Duration.ofSeconds(15), m -> m instanceof WorkerProtocol.Identify id && from(id, "coordinator-404")
                ? respond(id, w0) : ignore());
        TrainingEvent.RunFinished fin = nextEvent(TrainingEvent.RunFinished.class);
        // 1 of 2, or 0 on a machine so loaded that the answer came after the 5 s
        assertTrue(fin.message().matches("only [01] of 2 workers joined within 5 s; last committed checkpoint: none"), fin.message());
        if (fin.message().startsWith("only 1")) {
            w0.fishForMessage(Duration.ofSeconds(10), m -> m instanceof WorkerProtocol.StopRun
                    ? akka.actor.testkit.typed.javadsl.FishingOutcomes.complete() : ignore()); // the waiting worker is told to stop
        }
        kit.stop(coord);
        kit.system().receptionist().tell(Receptionist.deregister(WorkerProtocol.SERVICE, w0.getRef()));
    }

    /**
     * Shrink: rank 2 stops answering after a checkpoint (its peers' rings failed); once the abort
     * bound passes it counts as lost, and the 2 survivors get generation 1's plan, computed here for
     * 2 ranks, resuming the committed checkpoint. A new worker is announced as joined.
     */
    @Test
    void shouldReplanTheSurvivorsFromTheLastCheckpointWhenARankIsLost(@TempDir Path tmp) throws Exception {
        dev.dreamcluster.model.DiffusersFolder.writeRandom(tmp.resolve("model"), dev.dreamcluster.model.Presets.TINY, 0,
                dev.dreamcluster.safetensors.DType.F32);
        Path ckpt = tmp.resolve("checkpoints").resolve("step-000005");
        dev.dreamcluster.model.DiffusersFolder.writeRandom(ckpt.resolve("model"), dev.dreamcluster.model.Presets.TINY, 1,
                dev.dreamcluster.safetensors.DType.F32);
        Files.writeString(ckpt.resolve("trainer_state.json"), "{}");
        Files.createDirectories(tmp.resolve("data"));
        Files.writeString(tmp.resolve("data").resolve("a.txt"), "a caption");
        Files.writeString(tmp.resolve("train.json"), "{\"data_root\": \"data\", \"resume_ckpt\": \"model\"}");
        var run = new dev.dreamcluster.config.RunConfig(dev.dreamcluster.config.TrainConfig.load(tmp.resolve("train.json"), java.util.Map.of()),
                dev.dreamcluster.config.ConfigResolver.load(tmp.resolve("train.json"), dev.dreamcluster.config.CliFlags.NONE, 4));
        var gen0 = dev.dreamcluster.plan.PlanManifest.compute(run, 3, null);
        CoordinatorSettings s = new CoordinatorSettings(2, 3, 3, 303, gen0.hash(), gen0.lines(), run.toJson(), "", tmp.resolve("out"),
                new CoordinatorSettings.Timeouts(Duration.ofMinutes(1), Duration.ofMinutes(1), Duration.ofMinutes(1), Duration.ofSeconds(2)));
        List<TestProbe<WorkerProtocol.Command>> ws = List.of(worker(), worker(), worker());
        ActorRef<Coordinator.Command> coord = kit.spawn(Coordinator.create(s), "coordinator-303");
        try {
            shrink(ws, coord, run, ckpt);
        } finally {
            coord.tell(new Coordinator.Stop("test over"));
            for (TestProbe<WorkerProtocol.Command> w : ws) {
                kit.system().receptionist().tell(Receptionist.deregister(WorkerProtocol.SERVICE, w.getRef()));
            }
            kit.stop(coord);
        }
    }

    private static void shrink(List<TestProbe<WorkerProtocol.Command>> ws, ActorRef<Coordinator.Command> coord,
            dev.dreamcluster.config.RunConfig run, Path ckpt) {
        for (TestProbe<WorkerProtocol.Command> w : ws) {
            w.fishForMessage(Duration.ofSeconds(15), m -> m instanceof WorkerProtocol.Identify id && from(id, "coordinator-303")
                    ? respond(id, w) : ignore());
        }
        WorkerProtocol.AssignPlan[] plans = new WorkerProtocol.AssignPlan[3];
        for (TestProbe<WorkerProtocol.Command> w : ws) {
            WorkerProtocol.AssignPlan a = w.expectMessageClass(WorkerProtocol.AssignPlan.class, Duration.ofSeconds(15));
            plans[a.rank()] = a;
            SenderGate.tell(a.replyTo(), new CoordinatorProtocol.PlanAccepted(303, a.rank()), w.getRef());
        }
        assertEquals(0, plans[0].plan().generation());
        for (TestProbe<WorkerProtocol.Command> w : ws) {
            w.expectMessageClass(WorkerProtocol.StartRun.class);
        }
        TrainingEvent.GenerationStarted g0 = nextEvent(TrainingEvent.GenerationStarted.class);
        assertEquals(3, g0.world());
        var reply = plans[0].replyTo();
        SenderGate.tell(reply, new CoordinatorProtocol.CheckpointCommitted(303, 0, 5, 20, ckpt.toString()), ws.get(0).getRef());
        // ranks 0 and 1: their rings failed; rank 2 is silent
        List<TestProbe<WorkerProtocol.Command>> byRank = new java.util.ArrayList<>();
        for (int r = 0; r < 3; r++) {
            final int rank = r;
            byRank.add(ws.stream().filter(w -> plans[rank].plan().peers().get(rank).equals(addressOf(w))).findFirst().orElseThrow());
        }
        for (int r = 0; r < 2; r++) {
            SenderGate.tell(reply, new CoordinatorProtocol.GenerationEnded(303, 0, r, "collective failed: EOF", byRank.get(r).getRef(),
                    "127.0.0.1:" + (7200 + r)), byRank.get(r).getRef());
        }
        byRank.get(2).expectMessageClass(WorkerProtocol.AbortGeneration.class, Duration.ofSeconds(10));
        assertTrue(nextEvent(TrainingEvent.WorkerLost.class).address() != null);
        for (int r = 0; r < 2; r++) {
            // rank 1 may first be told to abort (rank 0's failure arrived before its own)
            WorkerProtocol.AssignPlan next = (WorkerProtocol.AssignPlan) byRank.get(r).fishForMessage(Duration.ofSeconds(30),
                    m -> m instanceof WorkerProtocol.AssignPlan ? akka.actor.testkit.typed.javadsl.FishingOutcomes.complete() : ignore())
                    .get(0);
            assertEquals(1, next.plan().generation());
            assertEquals(2, next.plan().worldSize(), "the survivors only");
            assertEquals(ckpt.toString(), next.plan().resume(), "from the last committed checkpoint");
            assertEquals(dev.dreamcluster.plan.PlanManifest.compute(run, 2, ckpt).hash(), next.plan().planHash());
            assertTrue(next.plan().peers().contains("127.0.0.1:" + (7200 + r)), "the survivor's new ring address");
            SenderGate.tell(next.replyTo(), new CoordinatorProtocol.PlanAccepted(303, next.rank()), byRank.get(r).getRef());
        }
        TrainingEvent.GenerationStarted g1 = nextEvent(TrainingEvent.GenerationStarted.class);
        assertEquals(1, g1.generation());
        assertEquals(2, g1.world());
        assertEquals(5, g1.fromStep());
        assertTrue(g1.reason().contains("failed"), g1.reason());
    }

    /**
     * Spot-safe: rank 2 says it is leaving (SIGTERM); the ranks stop at a step boundary with a checkpoint
     * (step 7: no periodic one before it) and end the generation, a survivor's end arriving before rank
     * 0's commit; the next generation runs on the 2 others from that checkpoint. Then the launcher's
     * SIGTERM: every rank is told to checkpoint and stop, and the run ends naming the new checkpoint.
     */
    @Test
    void shouldGoOnWithoutALeavingWorkerFromTheCheckpointItsGenerationEndedWith(@TempDir Path tmp) throws Exception {
        dev.dreamcluster.model.DiffusersFolder.writeRandom(tmp.resolve("model"), dev.dreamcluster.model.Presets.TINY, 0,
                dev.dreamcluster.safetensors.DType.F32);
        Path ckpt = tmp.resolve("checkpoints").resolve("step-000007");
        dev.dreamcluster.model.DiffusersFolder.writeRandom(ckpt.resolve("model"), dev.dreamcluster.model.Presets.TINY, 1,
                dev.dreamcluster.safetensors.DType.F32);
        Files.writeString(ckpt.resolve("trainer_state.json"), "{}");
        Files.createDirectories(tmp.resolve("data"));
        Files.writeString(tmp.resolve("data").resolve("a.txt"), "a caption");
        Files.writeString(tmp.resolve("train.json"), "{\"data_root\": \"data\", \"resume_ckpt\": \"model\"}");
        var run = new dev.dreamcluster.config.RunConfig(dev.dreamcluster.config.TrainConfig.load(tmp.resolve("train.json"), java.util.Map.of()),
                dev.dreamcluster.config.ConfigResolver.load(tmp.resolve("train.json"), dev.dreamcluster.config.CliFlags.NONE, 4));
        var gen0 = dev.dreamcluster.plan.PlanManifest.compute(run, 3, null);
        CoordinatorSettings s = new CoordinatorSettings(2, 3, 3, 304, gen0.hash(), gen0.lines(), run.toJson(), "", tmp.resolve("out"),
                new CoordinatorSettings.Timeouts(Duration.ofMinutes(1), Duration.ofMinutes(1), Duration.ofMinutes(1), Duration.ofSeconds(20)));
        List<TestProbe<WorkerProtocol.Command>> ws = List.of(worker(), worker(), worker());
        ActorRef<Coordinator.Command> coord = kit.spawn(Coordinator.create(s), "coordinator-304");
        try {
            for (TestProbe<WorkerProtocol.Command> w : ws) {
                w.fishForMessage(Duration.ofSeconds(15), m -> m instanceof WorkerProtocol.Identify id && from(id, "coordinator-304")
                        ? respond(id, w) : ignore());
            }
            WorkerProtocol.AssignPlan[] plans = new WorkerProtocol.AssignPlan[3];
            for (TestProbe<WorkerProtocol.Command> w : ws) {
                WorkerProtocol.AssignPlan a = w.expectMessageClass(WorkerProtocol.AssignPlan.class, Duration.ofSeconds(15));
                plans[a.rank()] = a;
                SenderGate.tell(a.replyTo(), new CoordinatorProtocol.PlanAccepted(304, a.rank()), w.getRef());
            }
            for (TestProbe<WorkerProtocol.Command> w : ws) {
                w.expectMessageClass(WorkerProtocol.StartRun.class);
            }
            assertEquals(3, nextEvent(TrainingEvent.GenerationStarted.class).world());
            var reply = plans[0].replyTo();
            List<TestProbe<WorkerProtocol.Command>> byRank = new java.util.ArrayList<>();
            for (int r = 0; r < 3; r++) {
                final int rank = r;
                byRank.add(ws.stream().filter(w -> plans[rank].plan().peers().get(rank).equals(addressOf(w))).findFirst().orElseThrow());
            }
            SenderGate.tell(reply, new CoordinatorProtocol.WorkerLeaving(304, 0, 2, byRank.get(2).getRef(), "SIGTERM"),
                    byRank.get(2).getRef());
            assertTrue(nextEvent(TrainingEvent.WorkerLost.class).address() != null, "counted out of the next generation at once");
            String stopped = "generation stopped after step 7 (a worker is leaving)";
            // rank 1's end overtakes rank 0's commit; the leaving rank 2 answers too
            SenderGate.tell(reply, new CoordinatorProtocol.GenerationEnded(304, 0, 1, stopped, byRank.get(1).getRef(), "127.0.0.1:7301"),
                    byRank.get(1).getRef());
            SenderGate.tell(reply, new CoordinatorProtocol.CheckpointCommitted(304, 0, 7, 20, ckpt.toString()), byRank.get(0).getRef());
            SenderGate.tell(reply, new CoordinatorProtocol.GenerationEnded(304, 0, 0, stopped, byRank.get(0).getRef(), "127.0.0.1:7300"),
                    byRank.get(0).getRef());
            SenderGate.tell(reply, new CoordinatorProtocol.GenerationEnded(304, 0, 2, stopped, byRank.get(2).getRef(), "127.0.0.1:7302"),
                    byRank.get(2).getRef());
            WorkerProtocol.AssignPlan[] next = new WorkerProtocol.AssignPlan[2];
            for (int r = 0; r < 2; r++) {
                next[r] = (WorkerProtocol.AssignPlan) byRank.get(r).fishForMessage(Duration.ofSeconds(30),
                        m -> m instanceof WorkerProtocol.AssignPlan ? akka.actor.testkit.typed.javadsl.FishingOutcomes.complete() : ignore())
                        .get(0);
                assertEquals(1, next[r].plan().generation());
                assertEquals(2, next[r].plan().worldSize(), "the others only");
                assertEquals(ckpt.toString(), next[r].plan().resume(), "from the checkpoint the generation ended with");
                assertTrue(!next[r].plan().peers().contains("127.0.0.1:7302"), "not the leaving worker");
                SenderGate.tell(next[r].replyTo(), new CoordinatorProtocol.PlanAccepted(304, next[r].rank()), byRank.get(r).getRef());
            }
            TrainingEvent.GenerationStarted g1 = nextEvent(TrainingEvent.GenerationStarted.class);
            assertEquals(2, g1.world());
            assertEquals(7, g1.fromStep());
            byRank.get(2).expectNoMessage(Duration.ofMillis(300));

            // the launcher's SIGTERM: every rank checkpoints after the step in flight, then the run stops naming it
            coord.tell(new Coordinator.StopAtCheckpoint("SIGTERM"));
            Path ckpt9 = tmp.resolve("checkpoints").resolve("step-000009");
            for (int r = 0; r < 2; r++) {
                TestProbe<WorkerProtocol.Command> w = byRank.get(r);
                w.fishForMessage(Duration.ofSeconds(15), m -> m instanceof WorkerProtocol.CheckpointAndStop k && k.generation() == 1
                        ? akka.actor.testkit.typed.javadsl.FishingOutcomes.complete() : ignore());
            }
            int rank0 = next[0].rank() == 0 ? 0 : 1; // which survivor is rank 0 now
            var reply1 = next[0].replyTo();
            SenderGate.tell(reply1, new CoordinatorProtocol.CheckpointCommitted(304, 1, 9, 20, ckpt9.toString()), byRank.get(rank0).getRef());
            for (int r = 0; r < 2; r++) {
                SenderGate.tell(reply1, new CoordinatorProtocol.GenerationEnded(304, 1, next[r].rank(), "generation stopped after step 9",
                        byRank.get(r).getRef(), "127.0.0.1:740" + r), byRank.get(r).getRef());
            }
            TrainingEvent.RunFinished end = nextEvent(TrainingEvent.RunFinished.class);
            assertTrue(!end.ok() && end.message().endsWith(Coordinator.LAST_CHECKPOINT + ckpt9), end.message());
        } finally {
            coord.tell(new Coordinator.Stop("test over"));
            for (TestProbe<WorkerProtocol.Command> w : ws) {
                kit.system().receptionist().tell(Receptionist.deregister(WorkerProtocol.SERVICE, w.getRef()));
            }
            kit.stop(coord);
        }
    }

    static boolean from(WorkerProtocol.Identify id, String coordinator) {
        return id.replyTo().path().toString().contains(coordinator);
    }

    static akka.actor.testkit.typed.FishingOutcome reply(WorkerProtocol.Identify id, CoordinatorProtocol.Command answer,
            TestProbe<WorkerProtocol.Command> w) {
        SenderGate.tell(id.replyTo(), answer, w.getRef());
        return akka.actor.testkit.typed.javadsl.FishingOutcomes.complete();
    }

    static akka.actor.testkit.typed.FishingOutcome ignore() {
        return akka.actor.testkit.typed.javadsl.FishingOutcomes.continueAndIgnore();
    }

    /** The ring address respond() reports for a probe. */
    static String addressOf(TestProbe<WorkerProtocol.Command> w) {
        return "127.0.0.1:" + (7100 + Math.floorMod(w.getRef().path().name().hashCode(), 800));
    }

    static akka.actor.testkit.typed.FishingOutcome respond(WorkerProtocol.Identify id, TestProbe<WorkerProtocol.Command> w) {
        SenderGate.tell(id.replyTo(), new CoordinatorProtocol.WorkerIdentified(w.getRef(), addressOf(w)), w.getRef());
        return akka.actor.testkit.typed.javadsl.FishingOutcomes.complete();
    }
}
