package dev.dreamcluster.worker.node;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import akka.actor.testkit.typed.javadsl.ActorTestKit;
import akka.actor.testkit.typed.javadsl.TestProbe;
import dev.dreamcluster.model.DiffusersFolder;
import dev.dreamcluster.model.Presets;
import dev.dreamcluster.protocol.CoordinatorProtocol;
import dev.dreamcluster.protocol.RunPlan;
import dev.dreamcluster.protocol.SenderGate;
import dev.dreamcluster.protocol.WorkerProtocol;
import dev.dreamcluster.safetensors.DType;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The worker actor: identification, and refusal of a plan whose hash differs from its own. */
class WorkerTest {
    static final String SECRET = dev.dreamcluster.collective.RingCollective.newSecret();
    @Test
    void shouldAcceptItsOwnPlanAndRefuseAnother(@TempDir Path tmp) throws Exception {
        DiffusersFolder.writeRandom(tmp.resolve("model"), Presets.TINY, 0, DType.F32);
        Files.createDirectories(tmp.resolve("data"));
        Files.writeString(tmp.resolve("opt.json"), "{\"text_encoder_freezing\": {\"freeze_front_n_layers\": 2}}");
        Files.writeString(tmp.resolve("train.json"), "{\"data_root\": \"data\", \"resume_ckpt\": \"model\", \"optimizer_config\": \"opt.json\"}");
        RunPlan probe = new RunPlan(1, "", List.of("a:1", "b:2"), tmp.resolve("train.json").toString(), 3, tmp.resolve("out").toString(), SECRET);
        String hash = Worker.localPlanHash(probe);
        Files.writeString(tmp.resolve("opt.json"), "{\"text_encoder_freezing\": {\"freeze_front_n_layers\": 3}}");
        assertNotEquals(hash, Worker.localPlanHash(probe), "a different freezing config changes the plan hash");
        Files.writeString(tmp.resolve("opt.json"), "{\"text_encoder_freezing\": {\"freeze_front_n_layers\": 2}}");
        RunPlan one = new RunPlan(1, "", List.of("a:1"), probe.trainJson(), 3, probe.out(), SECRET);
        assertNotEquals(hash, Worker.localPlanHash(one), "the world size is part of the plan");

        ActorTestKit kit = ActorTestKit.create("worker-test", com.typesafe.config.ConfigFactory.parseString(
                "akka.cluster.roles = [coordinator, worker]").withFallback(com.typesafe.config.ConfigFactory.load()));
        try {
            // plans count only from the coordinator's node: this one-node cluster is it
            var cluster = akka.cluster.typed.Cluster.get(kit.system());
            cluster.manager().tell(akka.cluster.typed.Join.create(cluster.selfMember().address()));
            ServerSocketChannel server = ServerSocketChannel.open().bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
            var worker = kit.spawn(Worker.create(server, "127.0.0.1:1234"));
            TestProbe<CoordinatorProtocol.Command> coord = kit.createTestProbe();
            TestProbe<akka.actor.typed.receptionist.Receptionist.Listing> listing = kit.createTestProbe();
            kit.system().receptionist().tell(akka.actor.typed.receptionist.Receptionist.subscribe(WorkerProtocol.SERVICE, listing.getRef()));
            var registered = listing.fishForMessage(java.time.Duration.ofSeconds(5), l -> l.getServiceInstances(WorkerProtocol.SERVICE).isEmpty()
                    ? akka.actor.testkit.typed.javadsl.FishingOutcomes.continueAndIgnore()
                    : akka.actor.testkit.typed.javadsl.FishingOutcomes.complete());
            var ref = registered.get(registered.size() - 1).getServiceInstances(WorkerProtocol.SERVICE).iterator().next();
            SenderGate.tell(ref, new WorkerProtocol.Identify(coord.getRef()), coord.getRef());
            assertEquals("127.0.0.1:1234", coord.expectMessageClass(CoordinatorProtocol.WorkerIdentified.class).dataAddress());
            RunPlan wrong = new RunPlan(7, "0000", probe.peers(), probe.trainJson(), 3, probe.out(), SECRET);
            ref.tell(new WorkerProtocol.AssignPlan(wrong, 1, coord.getRef())); // no sender: ignored
            coord.expectNoMessage(java.time.Duration.ofMillis(500));
            SenderGate.tell(ref, new WorkerProtocol.AssignPlan(wrong, 1, coord.getRef()), coord.getRef());
            CoordinatorProtocol.PlanRefused refused = coord.expectMessageClass(CoordinatorProtocol.PlanRefused.class);
            assertTrue(refused.reason().contains(hash) && refused.reason().contains("0000"), refused.reason());
            RunPlan right = new RunPlan(8, hash, probe.peers(), probe.trainJson(), 3, probe.out(), SECRET);
            SenderGate.tell(ref, new WorkerProtocol.AssignPlan(right, 1, coord.getRef()), coord.getRef());
            assertEquals(1, coord.expectMessageClass(CoordinatorProtocol.PlanAccepted.class).rank());
            kit.stop(worker);
        } finally {
            kit.shutdownTestKit();
        }
    }
}
