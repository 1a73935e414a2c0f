package dev.dreamcluster.coordinator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import akka.actor.testkit.typed.javadsl.ActorTestKit;
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
        CoordinatorSettings s = new CoordinatorSettings(2, 101, "abc123", out.resolve("train.json"), 3, out);
        ActorRef<Coordinator.Command> coord = ClusterSingleton.get(kit.system())
                .init(SingletonActor.of(Coordinator.create(s), "coordinator-101"));
        for (TestProbe<WorkerProtocol.Command> w : List.of(w0, w1)) {
            WorkerProtocol.Identify id = w.expectMessageClass(WorkerProtocol.Identify.class, Duration.ofSeconds(15));
            SenderGate.tell(id.replyTo(), new CoordinatorProtocol.WorkerIdentified(w.getRef(), "127.0.0.1:" + (w == w0 ? 7000 : 7001)), w.getRef());
        }
        WorkerProtocol.AssignPlan a0 = w0.expectMessageClass(WorkerProtocol.AssignPlan.class);
        WorkerProtocol.AssignPlan a1 = w1.expectMessageClass(WorkerProtocol.AssignPlan.class);
        assertEquals(2, a0.plan().worldSize());
        assertEquals("abc123", a0.plan().planHash());
        assertEquals(1, a0.rank() + a1.rank(), "ranks 0 and 1");
        assertEquals(a0.plan(), a1.plan());
        assertEquals(a0.rank() == 0 ? "127.0.0.1:7000" : "127.0.0.1:7001", a0.plan().peers().get(0));
        SenderGate.tell(a0.replyTo(), new CoordinatorProtocol.PlanAccepted(101, a0.rank()), w0.getRef());
        SenderGate.tell(a1.replyTo(), new CoordinatorProtocol.PlanAccepted(101, a1.rank()), w1.getRef());
        w0.expectMessageClass(WorkerProtocol.StartRun.class);
        w1.expectMessageClass(WorkerProtocol.StartRun.class);
        assertEquals(101, nextEvent(TrainingEvent.RunStarted.class).runId());
        SenderGate.tell(a0.replyTo(), new CoordinatorProtocol.StepReported(101, 0, 1, 0.5, 1e-4, 5e-5, 2.0, 8.0, 0.1, 0.02, 0.01, 0.4), w0.getRef());
        TrainingEvent.StepCompleted step = nextEvent(TrainingEvent.StepCompleted.class);
        assertEquals(1, step.step());
        assertEquals(0.5, step.loss());
        a0.replyTo().tell(new CoordinatorProtocol.RunEnded(101, 0, false, "forged: no sender")); // ignored (SenderGate)
        SenderGate.tell(a0.replyTo(), new CoordinatorProtocol.RunEnded(101, 0, true, "done"), w0.getRef());
        SenderGate.tell(a1.replyTo(), new CoordinatorProtocol.RunEnded(101, 1, true, "done"), w1.getRef());
        TrainingEvent.RunFinished fin = nextEvent(TrainingEvent.RunFinished.class);
        assertTrue(fin.ok(), fin.message());
        assertTrue(Files.readString(out.resolve("metrics.jsonl")).contains("\"step\":1,\"loss\":0.5"));
        assertTrue(Files.readString(out.resolve("metrics.jsonl")).contains("\"val_loss\":0.4"));
        coord.tell(new Coordinator.Stop("test over")); // a finished singleton stays up and ignores the stop
        kit.system().receptionist().tell(Receptionist.deregister(WorkerProtocol.SERVICE, w0.getRef()));
        kit.system().receptionist().tell(Receptionist.deregister(WorkerProtocol.SERVICE, w1.getRef()));
    }

    @Test
    void shouldStopTheRunWhenAWorkerRefusesThePlan(@TempDir Path out) throws Exception {
        TestProbe<WorkerProtocol.Command> w0 = worker();
        TestProbe<WorkerProtocol.Command> w1 = worker();
        CoordinatorSettings s = new CoordinatorSettings(2, 202, "hash-a", out.resolve("train.json"), 3, out);
        ActorRef<Coordinator.Command> coord = kit.spawn(Coordinator.create(s));
        for (TestProbe<WorkerProtocol.Command> w : List.of(w0, w1)) {
            w.fishForMessage(Duration.ofSeconds(15), m -> m instanceof WorkerProtocol.Identify id
                    ? respond(id, w) : akka.actor.testkit.typed.javadsl.FishingOutcomes.continueAndIgnore());
        }
        WorkerProtocol.AssignPlan a0 = w0.expectMessageClass(WorkerProtocol.AssignPlan.class);
        WorkerProtocol.AssignPlan a1 = w1.expectMessageClass(WorkerProtocol.AssignPlan.class);
        SenderGate.tell(a0.replyTo(), new CoordinatorProtocol.PlanAccepted(202, a0.rank()), w0.getRef());
        SenderGate.tell(a1.replyTo(), new CoordinatorProtocol.PlanRefused(202, a1.rank(), "plan hash hash-b differs from hash-a"), w1.getRef());
        w0.expectMessageClass(WorkerProtocol.StopRun.class);
        TrainingEvent.RunFinished fin = nextEvent(TrainingEvent.RunFinished.class);
        assertTrue(!fin.ok() && fin.message().contains("refused the plan") && fin.message().contains("last committed checkpoint"),
                fin.message());
        kit.stop(coord);
        kit.system().receptionist().tell(Receptionist.deregister(WorkerProtocol.SERVICE, w0.getRef()));
        kit.system().receptionist().tell(Receptionist.deregister(WorkerProtocol.SERVICE, w1.getRef()));
    }

    static akka.actor.testkit.typed.FishingOutcome respond(WorkerProtocol.Identify id, TestProbe<WorkerProtocol.Command> w) {
        SenderGate.tell(id.replyTo(), new CoordinatorProtocol.WorkerIdentified(w.getRef(), "127.0.0.1:7100"), w.getRef());
        return akka.actor.testkit.typed.javadsl.FishingOutcomes.complete();
    }
}
