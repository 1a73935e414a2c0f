package dev.dreamcluster.monitoring;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import akka.actor.testkit.typed.javadsl.ActorTestKit;
import akka.actor.testkit.typed.javadsl.TestProbe;
import akka.actor.typed.ActorRef;
import akka.actor.typed.pubsub.Topic;
import akka.cluster.MemberStatus;
import akka.cluster.typed.Cluster;
import akka.cluster.typed.Join;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import dev.dreamcluster.protocol.TrainingEvent;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The monitoring server on a one-node cluster, fed by real events on the real topic and real files
 * in a run folder: port 0 binds a free port and reports it; status, metrics rows, Prometheus and
 * samples say what the events and files say; paths out of samples/ and writes are refused. (The
 * same endpoints against a real 2-worker run: the CLI's MonitoringEndpointsTest.)
 */
class MonitoringServerTest {
    static final Config CONFIG = ConfigFactory.parseString("""
            akka.actor.provider = cluster
            akka.remote.artery.canonical.hostname = 127.0.0.1
            akka.remote.artery.canonical.port = 0
            akka.cluster.roles = [coordinator]
            akka.cluster.jmx.multi-mbeans-in-same-jvm = on
            akka.coordinated-shutdown.exit-jvm = off
            """).withFallback(ConfigFactory.load());
    static final ObjectMapper JSON = new ObjectMapper();

    static ActorTestKit kit;
    static HttpClient http = HttpClient.newHttpClient();

    @BeforeAll
    static void cluster() {
        kit = ActorTestKit.create("dreamcluster", CONFIG);
        Cluster c = Cluster.get(kit.system());
        c.manager().tell(Join.create(c.selfMember().address()));
        kit.createTestProbe().awaitAssert(Duration.ofSeconds(10), () -> {
            assertEquals(MemberStatus.up(), c.selfMember().status());
            return null;
        });
    }

    @AfterAll
    static void stop() {
        kit.shutdownTestKit();
    }

    static HttpResponse<String> get(URI base, String path) throws Exception {
        return http.send(HttpRequest.newBuilder(base.resolve(path)).build(), HttpResponse.BodyHandlers.ofString());
    }

    @Test
    void shouldServeWhatTheTopicAndTheRunFolderSay(@TempDir Path out) throws Exception {
        Files.writeString(out.resolve("metrics.jsonl"), """
                {"step":1,"loss":0.5,"lr_unet":1.0E-4,"lr_text_encoder":5.0E-5,"grad_norm":2.0,"samples_per_s":8.0}
                {"step":2,"loss":NaN,"lr_unet":1.0E-4,"lr_text_encoder":5.0E-5,"grad_norm":1.5,"samples_per_s":9.0,"val_loss":0.25}
                {"step":3,"loss":0.3""", StandardCharsets.UTF_8); // the last line is still being written
        Path ckpt = Files.createDirectories(out.resolve("checkpoints").resolve("step-000002"));
        Files.writeString(ckpt.resolve("trainer_state.json"), "{}");
        Files.createDirectories(out.resolve("checkpoints").resolve("step-000004")); // not committed: no trainer_state.json
        Path img = Files.createDirectories(out.resolve("samples").resolve("step-000002")).resolve("a cat.png");
        byte[] png = {(byte) 0x89, 'P', 'N', 'G', 13, 10, 26, 10, 1, 2, 3};
        Files.write(img, png);
        Files.writeString(out.resolve("secret.txt"), "not for the web");

        URI base = MonitoringServer.start(kit.system(), new MonitoringSettings("127.0.0.1", 0, out)).toCompletableFuture()
                .get(30, TimeUnit.SECONDS);
        assertTrue(base.toString().startsWith("http://127.0.0.1:"), base.toString());
        assertNotEquals(0, base.getPort(), "port 0 is replaced by the bound port");

        ActorRef<Topic.Command<TrainingEvent>> topic = kit.spawn(Topic.create(TrainingEvent.class, TrainingEvent.TOPIC));
        TestProbe<TrainingEvent> probe = kit.createTestProbe();
        topic.tell(Topic.subscribe(probe.getRef()));
        // the server's own topic instance must be known to ours before a publish reaches it
        kit.createTestProbe().awaitAssert(Duration.ofSeconds(10), () -> {
            topic.tell(Topic.publish(new TrainingEvent.RunStarted(42, 2, "cafe", 10)));
            probe.expectMessageClass(TrainingEvent.RunStarted.class);
            JsonNode st = JSON.readTree(get(base, "api/status").body());
            assertEquals("42", st.get("run_id").asText());
            return null;
        });
        topic.tell(Topic.publish(new TrainingEvent.GenerationStarted(42, 0, 2, 0, "cafe", "start")));
        topic.tell(Topic.publish(new TrainingEvent.StepCompleted(42, 1, 0.5, 1e-4, 5e-5, 2.0, 8.0, 0.1, 0.02, 0.01, Double.NaN)));
        topic.tell(Topic.publish(new TrainingEvent.WorkerStepCompleted(42, 0, "akka://dreamcluster@127.0.0.1:1", 1, 8.0, 0.1, 0.02, 0.01)));
        topic.tell(Topic.publish(new TrainingEvent.WorkerStepCompleted(42, 1, "akka://dreamcluster@127.0.0.1:2", 1, 8.0, 0.2, 0.03, 0.01)));
        topic.tell(Topic.publish(new TrainingEvent.StepCompleted(42, 2, 0.4, 1e-4, 5e-5, 1.5, 9.0, 0.1, 0.02, 0.01, 0.25)));

        kit.createTestProbe().awaitAssert(Duration.ofSeconds(10), () -> {
            JsonNode s = JSON.readTree(get(base, "api/status").body());
            assertEquals(2, s.get("step").asInt());
            assertEquals(10, s.get("total_steps").asInt());
            assertEquals("running", s.get("phase").asText());
            assertEquals(0.4, s.get("loss").asDouble());
            assertEquals(0.25, s.get("val_loss").asDouble());
            assertEquals(1e-4, s.at("/lr/unet").asDouble());
            assertEquals(5e-5, s.at("/lr/text_encoder").asDouble());
            assertEquals(2, s.get("split").size());
            assertEquals(0.2, s.at("/split/1/compute_s").asDouble());
            assertEquals(2, s.at("/last_checkpoint/step").asInt(), "the uncommitted step-000004 is not a checkpoint");
            assertEquals(1, s.get("checkpoints").size());
            assertEquals("samples/step-000002/a cat.png", s.at("/samples/0").asText());
            assertEquals("Up", s.at("/members/0/status").asText());
            assertEquals(0, s.get("generation").asInt());
            return null;
        });

        JsonNode rows = JSON.readTree(get(base, "api/metrics?since=2").body());
        assertEquals(1, rows.size(), "step 2 only: step 1 is before, step 3 is not complete yet");
        assertTrue(rows.get(0).get("loss").isNull(), "NaN in metrics.jsonl is null in JSON");
        assertEquals(0.25, rows.get(0).get("val_loss").asDouble());
        assertEquals(2, JSON.readTree(get(base, "api/metrics").body()).size());
        HttpResponse<String> bad = get(base, "api/metrics?since=two");
        assertEquals(400, bad.statusCode());
        assertTrue(bad.body().contains("since"), bad.body());

        HttpResponse<String> prom = get(base, "metrics");
        assertTrue(prom.headers().firstValue("Content-Type").orElse("").startsWith("text/plain"), prom.headers().toString());
        assertTrue(prom.body().contains("dreamcluster_step{run_id=\"42\"} 2\n"), prom.body());
        assertTrue(prom.body().contains("dreamcluster_total_steps{run_id=\"42\"} 10\n"), prom.body());
        assertTrue(prom.body().contains("dreamcluster_generation{run_id=\"42\"} 0\n"), prom.body());
        assertTrue(prom.body().contains("dreamcluster_learning_rate{run_id=\"42\",component=\"unet\"} 1.0E-4\n"), prom.body());
        assertTrue(prom.body().contains("rank=\"1\",address=\"akka://dreamcluster@127.0.0.1:2\",phase=\"compute\"} 0.2\n"), prom.body());
        assertTrue(prom.body().contains("dreamcluster_last_checkpoint_step{run_id=\"42\"} 2\n"), prom.body());
        assertTrue(prom.body().contains("dreamcluster_cluster_members{status=\"up\"} 1\n"), prom.body());

        HttpResponse<byte[]> sample = http.send(HttpRequest.newBuilder(base.resolve("samples/step-000002/a%20cat.png")).build(),
                HttpResponse.BodyHandlers.ofByteArray());
        assertEquals(200, sample.statusCode());
        assertEquals("image/png", sample.headers().firstValue("Content-Type").orElse(""));
        assertArrayEquals(png, sample.body());
        assertTrue(get(base, "samples/").body().contains("step-000002/a cat.png"));
        for (String escape : new String[] {"samples/..%2Fsecret.txt", "samples/%2e%2e/secret.txt", "samples/step-000002/..%2F..%2Fsecret.txt",
            "samples/step-000002/%2E%2E/%2E%2E/secret.txt", "samples/%2Ftmp"}) {
            HttpResponse<String> r = get(base, escape);
            assertEquals(404, r.statusCode(), escape);
            assertFalse(r.body().contains("not for the web"), escape);
        }
        Path link = out.resolve("samples").resolve("link.txt");
        Files.createSymbolicLink(link, out.resolve("secret.txt"));
        assertEquals(404, get(base, "samples/link.txt").statusCode(), "a link out of samples/ is not followed");

        HttpResponse<String> post = http.send(HttpRequest.newBuilder(base.resolve("api/status")).POST(HttpRequest.BodyPublishers.noBody())
                .build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(405, post.statusCode(), "read-only");
        // a server started without control (no token): the control routes refuse, with and without a credential
        HttpResponse<String> noToken = http.send(HttpRequest.newBuilder(base.resolve("api/pause")).POST(HttpRequest.BodyPublishers
                .noBody()).build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(401, noToken.statusCode(), noToken.body());
        assertTrue(noToken.headers().firstValue("WWW-Authenticate").orElse("").startsWith("Bearer"), noToken.headers().toString());
        HttpResponse<String> off = http.send(HttpRequest.newBuilder(base.resolve("api/stop")).header("Authorization", "Bearer "
                + "x".repeat(43)).POST(HttpRequest.BodyPublishers.noBody()).build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(403, off.statusCode(), off.body());
        assertTrue(off.body().contains("control is off"), off.body());
        assertEquals(200, get(base, "alive").statusCode());
        assertEquals(200, get(base, "ready").statusCode());
        assertTrue(get(base, "cluster/members").body().contains("\"status\":\"Up\""));
        HttpResponse<String> page = get(base, "");
        assertTrue(page.body().contains("<script src=\"dashboard.js\">"), page.body());
        assertTrue(get(base, "dashboard.js").body().contains("new EventSource('api/events')"));
    }
}
