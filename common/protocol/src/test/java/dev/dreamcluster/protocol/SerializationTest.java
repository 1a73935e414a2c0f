package dev.dreamcluster.protocol;

import static org.junit.jupiter.api.Assertions.assertEquals;

import akka.actor.testkit.typed.javadsl.ActorTestKit;
import akka.serialization.Serialization;
import akka.serialization.SerializationExtension;
import akka.serialization.Serializers;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The pinned Jackson (2.17, with module-scala at the same version) under Akka 2.6.21: records,
 * single-field records included (Akka's own Jackson 2.11.4 cannot read those), round-trip through
 * the bound jackson-cbor serializer.
 */
class SerializationTest {
    static ActorTestKit kit;

    record Single(long step) implements CborSerializable {}

    record Several(String runId, int rank, List<String> names, byte[] id) implements CborSerializable {}

    @BeforeAll
    static void start() {
        kit = ActorTestKit.create("serialization");
    }

    @AfterAll
    static void stop() {
        kit.shutdownTestKit();
    }

    static Object roundTrip(Object msg) {
        Serialization s = SerializationExtension.get(kit.system().classicSystem());
        akka.serialization.Serializer ser = s.findSerializerFor(msg);
        assertEquals("JacksonCborSerializer", ser.getClass().getSimpleName());
        byte[] bytes = s.serialize(msg).get();
        return s.deserialize(bytes, ser.identifier(), Serializers.manifestFor(ser, msg)).get();
    }

    @Test
    void shouldRoundTripSingleFieldRecords() {
        assertEquals(new Single(42), roundTrip(new Single(42)));
    }

    @Test
    void shouldRoundTripRecordsWithListsAndBytes() {
        Several back = (Several) roundTrip(new Several("run-1", 3, List.of("a", "b"), new byte[] {1, 2, 3}));
        assertEquals("run-1", back.runId());
        assertEquals(List.of("a", "b"), back.names());
        assertEquals(3, back.id().length);
    }

    @Test
    void shouldRoundTripTheMonitoringEvents() {
        TrainingEvent split = new TrainingEvent.WorkerStepCompleted(7, 1, "akka://dreamcluster@127.0.0.1:2552", 12, 10.5, 0.25,
                0.03, 0.01);
        assertEquals(split, roundTrip(split));
        TrainingEvent started = new TrainingEvent.RunStarted(7, 2, "abc", 40);
        assertEquals(started, roundTrip(started));
    }

    /** The NCCL unique id reaches every rank intact inside the plan (CBOR), and auto falls back to the ring on CPUs. */
    @Test
    void planCarriesTheNcclUniqueId() {
        byte[] id = new byte[128];
        new java.util.Random(3).nextBytes(id);
        java.util.List<DataPlane.Offer> offers = List.of(DataPlane.Offer.nccl(id), DataPlane.Offer.nccl(new byte[128]));
        DataPlane nccl = DataPlane.choose(dev.dreamcluster.device.CollectiveKind.AUTO, offers, l -> { });
        RunPlan plan = new RunPlan(9, 0, "h", List.of("world\t2"), List.of("a:1", "b:2"), "{}", "", "c2VjcmV0", nccl);
        RunPlan back = (RunPlan) roundTrip(plan);
        assertEquals(plan, back);
        org.junit.jupiter.api.Assertions.assertArrayEquals(id, back.dataPlane().uniqueId()); // rank 0's id, not rank 1's
        java.util.List<String> log = new java.util.ArrayList<>();
        DataPlane ring = DataPlane.choose(dev.dreamcluster.device.CollectiveKind.AUTO,
                List.of(DataPlane.Offer.ring("cpu worker"), DataPlane.Offer.ring("cpu worker")), log::add);
        assertEquals(DataPlane.RING, ring);
        assertEquals(List.of("collective auto: using the TCP ring (worker 0: cpu worker)"), log);
        assertEquals(DataPlane.RING, ((RunPlan) roundTrip(new RunPlan(9, 0, "h", List.of(), List.of("a:1"), "{}", "", "c2VjcmV0"))).dataPlane());
        CoordinatorProtocol.WorkerIdentified w = new CoordinatorProtocol.WorkerIdentified(null, "h:1", DataPlane.Offer.nccl(id));
        assertEquals(dev.dreamcluster.device.NcclUniqueId.encode(id), w.offer().ncclUniqueId());
        assertEquals("offered no NCCL id", new CoordinatorProtocol.WorkerIdentified(null, "h:1").offer().notNccl());
    }
}
