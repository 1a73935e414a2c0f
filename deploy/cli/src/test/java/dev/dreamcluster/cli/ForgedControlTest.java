package dev.dreamcluster.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import akka.actor.typed.ActorRef;
import akka.actor.typed.ActorSystem;
import akka.actor.typed.javadsl.Behaviors;
import akka.actor.typed.pubsub.Topic;
import akka.actor.typed.receptionist.Receptionist;
import akka.cluster.typed.ClusterSingleton;
import akka.cluster.typed.ClusterSingletonSettings;
import akka.cluster.typed.SingletonActor;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import dev.dreamcluster.coordinator.Coordinator;
import dev.dreamcluster.protocol.EventSubscribers;
import dev.dreamcluster.protocol.SenderGate;
import dev.dreamcluster.protocol.TrainingEvent;
import dev.dreamcluster.protocol.WorkerProtocol;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The attack of issue 11 with real processes: {@code train --workers 2} (coordinator here, two worker
 * JVMs) and, mid-run, a member that holds the cluster's keys but is not the coordinator (role
 * monitor). It forges a RunFinished to every trusted event subscriber and on the open topic, sends
 * every worker a StopRun of the real run id (with and without a sender), and sends the coordinator
 * singleton a Stop (binding that class to a serializer on its side). None of it may have any effect: the run trains every step and ends ok.
 */
class ForgedControlTest {
    @Test
    void aMemberThatIsNotTheCoordinatorCannotEndOrStopTheRun(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("run");
        Path trainJson = ClusterTrainingTest.example(tmp);
        Path keys = tmp.resolve("keys");
        assertEquals(0, Cli.run("keys", "--out", keys.toString()).status());
        int port = ClusterTrainingTest.freePort();
        int steps = 40;
        CompletableFuture<Cli> train = CompletableFuture.supplyAsync(() -> Cli.run("train", "--config", trainJson.toString(),
                "--workers", "2", "--max_steps", Integer.toString(steps), "--out", out.toString(),
                "--coordinator_bind", "127.0.0.1:" + port, "--keys", keys.resolve("node").toString()));
        Path metrics = out.resolve("metrics.jsonl");
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(180);
        while ((!Files.exists(metrics) || Files.readAllLines(metrics).size() < 2) && System.nanoTime() < deadline) {
            Thread.sleep(100);
        }
        assertTrue(Files.exists(metrics), "training started");

        AtomicInteger forgedEvents = new AtomicInteger();
        AtomicInteger forgedStops = new AtomicInteger();
        Config attackerConfig = ConfigFactory.parseString("""
                akka.remote.artery.canonical.hostname = "127.0.0.1"
                akka.remote.artery.canonical.port = 0
                akka.cluster.roles = [monitor]
                akka.cluster.seed-nodes = ["akka://dreamcluster@127.0.0.1:%d"]
                akka.actor.serialization-bindings { "dev.dreamcluster.coordinator.Coordinator$Stop" = jackson-cbor }
                """.formatted(port)).withFallback(ClusterKeys.akkaConfig(ClusterKeys.load(keys.resolve("node"), "--keys")))
                .withFallback(ConfigFactory.parseResources(Nodes.NODE_CONF)).withFallback(ConfigFactory.load());
        ActorSystem<Object> attacker = ActorSystem.create(Behaviors.setup(ctx -> {
            ActorRef<Object> self = ctx.getSelf();
            var topic = ctx.spawn(Topic.create(TrainingEvent.class, TrainingEvent.TOPIC), "topic");
            topic.tell(Topic.subscribe(self.narrow()));
            Set<Object> hit = new HashSet<>();
            long[] runId = {0};
            return Behaviors.receiveMessage(m -> {
                if (m instanceof TrainingEvent.StepCompleted s && runId[0] == 0) {
                    runId[0] = s.runId(); // the run id is public: every monitor sees it
                    topic.tell(Topic.publish(new TrainingEvent.RunFinished(s.runId(), true, "forged on the topic")));
                    var singleton = ClusterSingleton.get(ctx.getSystem()).init(SingletonActor.of(Behaviors.<Coordinator.Command>empty(),
                            "coordinator").withSettings(ClusterSingletonSettings.create(ctx.getSystem()).withRole("coordinator")));
                    singleton.tell(new Coordinator.Stop("forged"));
                    for (var key : List.of(EventSubscribers.SERVICE, WorkerProtocol.SERVICE)) {
                        ctx.getSystem().receptionist().tell(Receptionist.subscribe(key, self.narrow()));
                    }
                } else if (m instanceof Receptionist.Listing l && runId[0] != 0) {
                    if (l.isForKey(EventSubscribers.SERVICE)) {
                        for (ActorRef<TrainingEvent> sub : l.getServiceInstances(EventSubscribers.SERVICE)) {
                            if (hit.add(sub)) {
                                SenderGate.tell(sub, new TrainingEvent.RunFinished(runId[0], true, "forged with a sender"), self);
                                sub.tell(new TrainingEvent.RunFinished(runId[0], false, "forged without a sender"));
                                forgedEvents.incrementAndGet();
                            }
                        }
                    } else {
                        for (ActorRef<WorkerProtocol.Command> w : l.getServiceInstances(WorkerProtocol.SERVICE)) {
                            if (hit.add(w)) {
                                SenderGate.tell(w, new WorkerProtocol.StopRun(runId[0], "forged"), self);
                                w.tell(new WorkerProtocol.StopRun(runId[0], "forged without a sender"));
                                forgedStops.incrementAndGet();
                            }
                        }
                    }
                }
                return Behaviors.same();
            });
        }), "dreamcluster", attackerConfig);
        try {
            Cli r = train.get(240, TimeUnit.SECONDS);
            assertTrue(forgedEvents.get() >= 1 && forgedStops.get() >= 2,
                    "the attacker reached the launcher and both workers: " + forgedEvents + " subscribers, " + forgedStops + " workers");
            assertEquals(0, r.status(), r.out() + r.err());
            assertTrue(r.out().contains("done: finished"), r.out());
            assertEquals(steps + 1, Files.readAllLines(metrics).size(), "step 0 (the starting val_loss) and every step ran before the launcher returned");
            for (int w = 0; w < 2; w++) {
                String log = Files.readString(out.resolve("worker-" + w + ".log"));
                assertTrue(log.contains("ignoring StopRun from"), "worker " + w + " log names the ignored stop:\n" + log);
            }
            System.out.println("forged: " + forgedEvents + " event subscribers, " + forgedStops + " workers; the run finished all " + steps + " steps");
        } finally {
            ClusterTrainingTest.stopNode(attacker);
        }
    }

    /**
     * Roles decide who takes a rank: a member started with role "monitor" that poses as a worker
     * (registers, answers Identify for itself, with a sender) gets no plan; the same fake on a
     * "worker" node gets rank 0 (so the check, not the fake, is what refuses).
     */
    @Test
    void onlyAWorkerRoleNodeShouldTakeARank(@TempDir Path tmp) throws Exception {
        ClusterKeys.create(tmp.resolve("keys"), java.time.Duration.ofDays(1));
        ClusterKeys.NodeKeys keys = ClusterKeys.load(tmp.resolve("keys/node"), "--keys");
        var settings = new dev.dreamcluster.coordinator.CoordinatorSettings(1, 1, 1, 77, "hash", java.util.List.of("world\t1"), "{}", "",
                tmp.resolve("out"), dev.dreamcluster.coordinator.CoordinatorSettings.Timeouts.DEFAULT);
        ActorSystem<Void> coordinator = Nodes.startCoordinator(settings, new Nodes.HostPort("127.0.0.1", 0), null,
                new dev.dreamcluster.monitoring.MonitoringSettings("127.0.0.1", 0, tmp.resolve("out")), new CompletableFuture<>(),
                new java.io.PrintWriter(System.err, true), keys);
        String at = "127.0.0.1:" + akka.cluster.typed.Cluster.get(coordinator).selfMember().address().getPort().orElseThrow();
        try {
            assertEquals(0, plansTo("monitor", at, keys, 8), "a monitor-role node never gets a plan");
            assertEquals(1, plansTo("worker", at, keys, 30), "a worker-role node does");
        } finally {
            ClusterTrainingTest.stopNode(coordinator);
        }
    }

    /** Joins with {@code role}, poses as a worker for {@code seconds}, returns how many AssignPlans it got. */
    static int plansTo(String role, String seed, ClusterKeys.NodeKeys keys, int seconds) throws Exception {
        AtomicInteger plans = new AtomicInteger();
        ActorSystem<Void> node = Nodes.start(Behaviors.<Void>setup(ctx -> {
            var fake = ctx.spawn(Behaviors.<WorkerProtocol.Command>setup(f -> Behaviors.receiveMessage(c -> {
                if (c instanceof WorkerProtocol.Identify id) {
                    SenderGate.tell(id.replyTo(), new dev.dreamcluster.protocol.CoordinatorProtocol.WorkerIdentified(f.getSelf(),
                            "127.0.0.1:9"), f.getSelf());
                } else if (c instanceof WorkerProtocol.AssignPlan) {
                    plans.incrementAndGet();
                }
                return Behaviors.same();
            })), "fake-worker");
            // the coordinator only hears a gated sender, so the fake registers its own ref and replies with a sender
            ctx.getSystem().receptionist().tell(Receptionist.register(WorkerProtocol.SERVICE, fake));
            return Behaviors.empty();
        }), role, new Nodes.HostPort("127.0.0.1", 0), null, Nodes.hostPort(seed, "seed"), keys);
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
            while (plans.get() == 0 && System.nanoTime() < deadline) {
                Thread.sleep(100);
            }
            return plans.get();
        } finally {
            ClusterTrainingTest.stopNode(node);
        }
    }
}
