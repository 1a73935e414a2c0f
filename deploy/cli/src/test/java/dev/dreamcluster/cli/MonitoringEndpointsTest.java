package dev.dreamcluster.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.awt.image.BufferedImage;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Every endpoint of the embedded coordinator's monitoring server during a real {@code train --workers
 * 2} run, checked against the metrics.jsonl the run wrote: the status and Prometheus numbers of a step
 * are that step's row, /api/metrics returns the rows themselves, the event stream carries every step
 * (and every rank's split) once, in order, then the end.
 */
class MonitoringEndpointsTest {
    static final int STEPS = 14;
    static final int SAVE_EVERY = 4;

    @Test
    void everyEndpointShouldAgreeWithMetricsJsonl(@TempDir Path tmp) throws Exception {
        Path samples = Files.createDirectories(tmp.resolve("run").resolve("samples").resolve("step-000000"));
        BufferedImage img = new BufferedImage(8, 8, BufferedImage.TYPE_INT_RGB);
        img.setRGB(3, 3, 0xff0000);
        ImageIO.write(img, "png", samples.resolve("probe.png").toFile());
        Files.writeString(tmp.resolve("run").resolve("secret.txt"), "outside samples");
        MonitoredRun run = MonitoredRun.start(tmp, STEPS, SAVE_EVERY);

        // the event stream, read from before the first step to its end (it closes after RunFinished)
        List<JsonNode> events = Collections.synchronizedList(new ArrayList<>());
        HttpResponse<Stream<String>> sse = run.http.send(HttpRequest.newBuilder(run.base.resolve("api/events")).build(),
                HttpResponse.BodyHandlers.ofLines());
        assertEquals("text/event-stream", sse.headers().firstValue("Content-Type").orElse(""));
        CompletableFuture<Void> reader = CompletableFuture.runAsync(() -> sse.body().forEach(line -> {
            if (line.startsWith("data:") && line.length() > 5) { // "data:" alone is the 15 s keep-alive
                try {
                    events.add(MonitoredRun.JSON.readTree(line.substring(5)));
                } catch (Exception e) {
                    throw new AssertionError("not JSON: " + line, e);
                }
            }
        }));

        assertEquals("OK", run.get("alive").body());
        // a checkpoint is committed before the step after it starts, so step SAVE_EVERY + 2 implies one
        JsonNode status = run.awaitStatus(s -> s.get("step").asInt() >= SAVE_EVERY + 2, "step " + (SAVE_EVERY + 2));
        String prometheus = run.get("metrics").body();
        JsonNode since = run.json("api/metrics?since=2");
        JsonNode members = run.json("cluster/members");
        HttpResponse<String> ready = run.get("ready");
        HttpResponse<byte[]> probe = run.http.send(HttpRequest.newBuilder(run.base.resolve("samples/step-000000/probe.png")).build(),
                HttpResponse.BodyHandlers.ofByteArray());
        List<String> escapes = List.of("samples/..%2Fsecret.txt", "samples/%2e%2e/secret.txt", "samples/step-000000/..%2F..%2Fsecret.txt");
        Map<String, HttpResponse<String>> escaped = new HashMap<>();
        for (String e : escapes) {
            escaped.put(e, run.get(e));
        }
        HttpResponse<String> page = run.get("");

        List<JsonNode> rows = run.finish();
        reader.get(60, TimeUnit.SECONDS);
        assertEquals(STEPS + 1, rows.size(), "step 0 (the starting val_loss) and every step: " + rows);
        Map<Integer, JsonNode> byStep = new HashMap<>();
        rows.forEach(r -> byStep.put(r.get("step").asInt(), r));

        // status: the numbers of its step are that step's metrics.jsonl row
        int step = status.get("step").asInt();
        JsonNode row = byStep.get(step);
        assertEquals(row.get("loss").asDouble(), status.get("loss").asDouble(), status.toString());
        assertEquals(row.get("grad_norm").asDouble(), status.get("grad_norm").asDouble());
        assertEquals(row.get("samples_per_s").asDouble(), status.get("samples_per_s").asDouble());
        assertEquals(row.get("lr_unet").asDouble(), status.at("/lr/unet").asDouble());
        assertEquals(row.get("lr_text_encoder").asDouble(), status.at("/lr/text_encoder").asDouble());
        assertEquals(STEPS, status.get("total_steps").asInt());
        assertEquals("running", status.get("phase").asText());
        assertEquals(2, status.get("workers").asInt());
        assertTrue(status.get("eta_seconds").asDouble() > 0, status.toString());
        assertTrue(status.get("run_id").asText().matches("\\d+"), status.toString());
        assertEquals(2, status.get("split").size(), status.toString());
        for (JsonNode w : status.get("split")) {
            assertTrue(Math.abs(w.get("step").asInt() - step) <= 1, "each rank's split is of about the same step: " + status);
            assertTrue(w.get("compute_s").asDouble() > 0, status.toString());
        }
        int ckpt = status.at("/last_checkpoint/step").asInt();
        assertTrue(ckpt >= SAVE_EVERY && ckpt % SAVE_EVERY == 0 && ckpt < step, status.toString());
        assertTrue(Files.isRegularFile(Path.of(status.at("/last_checkpoint/path").asText()).resolve("trainer_state.json")));
        assertEquals("samples/step-000000/probe.png", status.at("/samples/0").asText());
        Set<String> roles = new HashSet<>();
        status.get("members").forEach(m -> {
            assertEquals("Up", m.get("status").asText());
            roles.add(m.get("roles").toString());
        });
        assertEquals(3, status.get("members").size(), status.toString());
        assertEquals(Set.of("[\"coordinator\"]", "[\"worker\"]"), roles);

        // Prometheus: one consistent snapshot; its step's loss is that row's
        int promStep = (int) promValue(prometheus, "dreamcluster_step");
        assertEquals(byStep.get(promStep).get("loss").asDouble(), promValue(prometheus, "dreamcluster_loss"), prometheus);
        assertEquals(STEPS, (int) promValue(prometheus, "dreamcluster_total_steps"));
        assertEquals(3, (int) promValue(prometheus, "dreamcluster_cluster_members"));
        assertEquals(6, Pattern.compile("(?m)^dreamcluster_worker_step_seconds\\{").matcher(prometheus).results().count(),
                "2 ranks x compute, comm, optimizer:\n" + prometheus);

        // /api/metrics?since=2: the rows themselves, from step 2 on
        assertTrue(since.size() >= step - 2, since.toString());
        for (int i = 0; i < since.size(); i++) {
            assertEquals(byStep.get(2 + i), since.get(i), "row " + (2 + i));
        }

        // the event stream: every step once and in order, with its row's loss; each rank's split; then the end
        List<Integer> steps = new ArrayList<>();
        Map<Integer, Set<Integer>> ranksByStep = new HashMap<>();
        for (JsonNode e : events) {
            switch (e.get("type").asText()) {
                case "StepCompleted" -> {
                    steps.add(e.get("step").asInt());
                    JsonNode r = byStep.get(e.get("step").asInt());
                    for (String key : new String[] {"loss", "val_loss", "grad_norm"}) {
                        // metrics.jsonl leaves out what is not a number (step 0 has no loss); the stream says null
                        assertEquals(r.has(key) ? r.get(key).asDouble() : null, e.get(key).isNull() ? null : e.get(key).asDouble(),
                                key + " of " + e);
                    }
                }
                case "WorkerStepCompleted" -> ranksByStep.computeIfAbsent(e.get("step").asInt(), k -> new HashSet<>())
                        .add(e.get("rank").asInt());
                default -> { }
            }
        }
        List<Integer> expected = new ArrayList<>(List.of(0));
        for (int s = 1; s <= STEPS; s++) {
            expected.add(s);
            assertEquals(Set.of(0, 1), ranksByStep.get(s), "both ranks' split of step " + s);
        }
        assertEquals(expected, steps);
        assertEquals("RunStarted", events.stream().filter(e -> !e.get("type").asText().equals("MemberChanged")).findFirst()
                .orElseThrow().get("type").asText());
        JsonNode last = events.get(events.size() - 1);
        assertEquals("RunFinished", last.get("type").asText());
        assertTrue(last.get("ok").asBoolean(), last.toString());

        // Management: members and health; samples; the page
        assertEquals(3, members.get("members").size(), members.toString());
        members.get("members").forEach(m -> assertEquals("Up", m.get("status").asText()));
        assertEquals(200, ready.statusCode(), ready.body());
        assertEquals(200, probe.statusCode());
        assertEquals("image/png", probe.headers().firstValue("Content-Type").orElse(""));
        assertArrayEquals(Files.readAllBytes(samples.resolve("probe.png")), probe.body());
        escaped.forEach((path, r) -> {
            assertEquals(404, r.statusCode(), path);
            assertFalse(r.body().contains("outside samples"), path);
        });
        assertEquals(200, page.statusCode());
        assertTrue(page.body().contains("dashboard.js"));
    }

    /** The value of the first sample of a metric in Prometheus text. */
    static double promValue(String text, String metric) {
        Matcher m = Pattern.compile("(?m)^" + metric + "\\{[^}]*\\} (\\S+)$").matcher(text);
        assertTrue(m.find(), metric + " missing:\n" + text);
        return Double.parseDouble(m.group(1));
    }
}
