package dev.dreamcluster.worker.node;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import akka.actor.testkit.typed.javadsl.ActorTestKit;
import akka.actor.testkit.typed.javadsl.FishingOutcomes;
import akka.actor.testkit.typed.javadsl.TestProbe;
import akka.actor.typed.ActorRef;
import akka.actor.typed.receptionist.Receptionist;
import dev.dreamcluster.config.CliFlags;
import dev.dreamcluster.config.ConfigResolver;
import dev.dreamcluster.config.RunConfig;
import dev.dreamcluster.config.TrainConfig;
import dev.dreamcluster.model.DiffusersFolder;
import dev.dreamcluster.plan.PlanManifest;
import dev.dreamcluster.protocol.CoordinatorProtocol;
import dev.dreamcluster.protocol.RunPlan;
import dev.dreamcluster.protocol.SenderGate;
import dev.dreamcluster.protocol.WorkerProtocol;
import dev.dreamcluster.worker.fixture.TinyRun;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The worker actor: identification, and the plan check against this node's own copies. Each
 * refusal must name what differs (a config key, a model file, a data file), and a refused plan never
 * starts training.
 */
class WorkerTest {
    /** A cluster node as the CLI starts one (the worker watches cluster membership for its coordinator). */
    static final com.typesafe.config.Config NODE = com.typesafe.config.ConfigFactory.parseString("akka.cluster.roles = [coordinator, worker]")
            .withFallback(com.typesafe.config.ConfigFactory.parseResources("dreamcluster-node.conf"))
            .withFallback(com.typesafe.config.ConfigFactory.load());
    static final String SECRET = dev.dreamcluster.collective.RingCollective.newSecret();

    /** Plans count only from the coordinator's node: this one-node cluster (roles coordinator and worker) is it. */
    static ActorTestKit node(String name) {
        ActorTestKit kit = ActorTestKit.create(name, NODE);
        var cluster = akka.cluster.typed.Cluster.get(kit.system());
        cluster.manager().tell(akka.cluster.typed.Join.create(cluster.selfMember().address()));
        return kit;
    }

    static RunConfig config(Path tmp, String optimizerJson) throws Exception {
        Files.writeString(tmp.resolve("opt.json"), optimizerJson);
        Files.writeString(tmp.resolve("train.json"), "{\"data_root\": \"data\", \"resume_ckpt\": \"model\", \"optimizer_config\": \"opt.json\","
                + " \"resolution\": 64}");
        TrainConfig train = TrainConfig.load(tmp.resolve("train.json"), Map.of());
        return new RunConfig(train, ConfigResolver.load(tmp.resolve("train.json"), CliFlags.NONE, 4));
    }

    static RunPlan plan(long id, PlanManifest coordinator, RunConfig sent) {
        return new RunPlan(id, 0, coordinator.hash(), coordinator.lines(), List.of("127.0.0.1:1", "127.0.0.1:2"), sent.toJson(), "", SECRET);
    }

    @Test
    void shouldAcceptItsOwnPlanAndRefuseOneThatDiffersNamingTheDifference(@TempDir Path tmp) throws Exception {
        dev.dreamcluster.worker.fixture.TinyRun.writeInputs(tmp, 4);
        RunConfig run = config(tmp, "{\"base\": {\"lr\": 1e-4}, \"text_encoder_freezing\": {\"freeze_front_n_layers\": 2}}");
        PlanManifest here = PlanManifest.compute(run, 2, null);
        RunConfig otherLr = config(tmp, "{\"base\": {\"lr\": 2e-4}, \"text_encoder_freezing\": {\"freeze_front_n_layers\": 2}}");
        RunConfig otherFreezing = config(tmp, "{\"base\": {\"lr\": 1e-4}, \"text_encoder_freezing\": {\"freeze_front_n_layers\": 3}}");

        ActorTestKit kit = node("worker-test");
        try {
            CompletableFuture<Worker.ComputeEnded> ended = new CompletableFuture<>();
            var worker = kit.spawn(Worker.create(RingEndpoint.loopback(), LocalPaths.PLAN, ended));
            TestProbe<CoordinatorProtocol.Command> coord = kit.createTestProbe();
            ActorRef<WorkerProtocol.Command> ref = registered(kit);
            SenderGate.tell(ref, new WorkerProtocol.Identify(coord.getRef()), coord.getRef());
            assertTrue(coord.expectMessageClass(CoordinatorProtocol.WorkerIdentified.class).dataAddress().startsWith("127.0.0.1:"));

            ref.tell(new WorkerProtocol.AssignPlan(plan(6, here, run), 1, coord.getRef())); // no sender: ignored
            coord.expectNoMessage(Duration.ofMillis(500));
            // the coordinator resolved lr 2e-4, but the plan carries a config with 1e-4 (a skewed or tampered plan)
            SenderGate.tell(ref, new WorkerProtocol.AssignPlan(plan(7, PlanManifest.compute(otherLr, 2, null), run), 1, coord.getRef()),
                    coord.getRef());
            String why = refusal(coord);
            assertTrue(why.contains("config key unet.lr") && why.contains("0.0002") && why.contains("0.0001"), why);

            SenderGate.tell(ref, new WorkerProtocol.AssignPlan(plan(8, PlanManifest.compute(otherFreezing, 2, null), run), 1,
                    coord.getRef()), coord.getRef());
            why = refusal(coord);
            assertTrue(why.contains("config key text_encoder_freezing.frozen_layers") && why.contains("[0,1,2]"), why);
            assertTrue(why.contains("parameter layout of the text_encoder"), why);

            SenderGate.tell(ref, new WorkerProtocol.AssignPlan(plan(9, here, run), 1, coord.getRef()), coord.getRef());
            assertEquals(1, coord.expectMessageClass(CoordinatorProtocol.PlanAccepted.class, Duration.ofSeconds(20)).rank());
            assertTrue(!ended.isDone(), "accepting a plan starts nothing before StartRun");
            kit.stop(worker);
        } finally {
            kit.shutdownTestKit();
        }
    }

    @Test
    void shouldRefuseWhenItsCopyOfTheModelOrDataDiffersNamingTheFile(@TempDir Path tmp) throws Exception {
        dev.dreamcluster.worker.fixture.TinyRun.writeInputs(tmp, 4);
        RunConfig run = config(tmp, "{}");
        PlanManifest coordinator = PlanManifest.compute(run, 2, null);
        Path copy = tmp.resolve("node2");
        TinyRun.copyTree(tmp.resolve("model"), copy.resolve("model"));
        TinyRun.copyTree(tmp.resolve("data"), copy.resolve("data"));
        Path weights = DiffusersFolder.weightsFile(copy.resolve("model"), dev.dreamcluster.freeze.Component.UNET);
        byte[] b = Files.readAllBytes(weights);
        b[b.length - 1] ^= 1; // one bit of one weight
        Files.write(weights, b);
        Path caption;
        try (var s = Files.list(copy.resolve("data"))) {
            caption = s.filter(p -> p.toString().endsWith(".txt")).sorted().findFirst().orElseThrow();
        }
        Files.writeString(caption, Files.readString(caption) + " changed");

        ActorTestKit kit = node("worker-test-copies");
        try {
            LocalPaths mine = new LocalPaths(copy.resolve("data"), copy.resolve("model"), copy.resolve("out"), null);
            var worker = kit.spawn(Worker.create(RingEndpoint.loopback(), mine, new CompletableFuture<>()));
            TestProbe<CoordinatorProtocol.Command> coord = kit.createTestProbe();
            ActorRef<WorkerProtocol.Command> ref = registered(kit);
            SenderGate.tell(ref, new WorkerProtocol.AssignPlan(plan(10, coordinator, run), 0, coord.getRef()), coord.getRef());
            String why = refusal(coord);
            assertTrue(why.contains("model file unet/diffusion_pytorch_model.safetensors"), why);
            assertTrue(why.contains("data file " + caption.getFileName()), why);
            kit.stop(worker);
        } finally {
            kit.shutdownTestKit();
        }
    }

    static String refusal(TestProbe<CoordinatorProtocol.Command> coord) {
        return coord.expectMessageClass(CoordinatorProtocol.PlanRefused.class, Duration.ofSeconds(20)).reason();
    }

    static ActorRef<WorkerProtocol.Command> registered(ActorTestKit kit) {
        TestProbe<Receptionist.Listing> listing = kit.createTestProbe();
        kit.system().receptionist().tell(Receptionist.subscribe(WorkerProtocol.SERVICE, listing.getRef()));
        var l = listing.fishForMessage(Duration.ofSeconds(5), x -> x.getServiceInstances(WorkerProtocol.SERVICE).isEmpty()
                ? FishingOutcomes.continueAndIgnore() : FishingOutcomes.complete());
        return l.get(l.size() - 1).getServiceInstances(WorkerProtocol.SERVICE).iterator().next();
    }
}
