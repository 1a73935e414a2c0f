package dev.dreamcluster.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Live control of a real {@code train --workers 2} run (two worker JVMs) from a terminal, through
 * {@code dreamcluster ctl} and the authenticated HTTP routes: requests without the token or with a
 * forged one are refused (401, 403) and change nothing; pause stops the steps, new sample prompts and
 * a checkpoint are applied while paused (the checkpoint holds the prompts), resume goes on, a second
 * resume is refused (exit 1), and stop ends the run at once with a checkpoint and the final model.
 * metrics.jsonl logs each applied request, in order, and nothing of the refused ones.
 */
class LiveControlTest {
    static final int MAX_STEPS = 400;
    static final String PROMPT = "a green triangle on a white background";
    static final int SAMPLE_STEPS = 6;

    @Test
    void everyControlShouldWorkFromATerminalAndRefuseWithoutTheToken(@TempDir Path tmp) throws Exception {
        Path keys = tmp.resolve("keys");
        assertEquals(0, Cli.run("keys", "--out", keys.toString()).status());
        Path node = keys.resolve("node");
        MonitoredRun run = MonitoredRun.start(tmp, MAX_STEPS, t -> t.put("sample_steps", SAMPLE_STEPS).put("save_every_n_steps", 1000),
                "--keys", node.toString());
        String url = run.base.toString();
        run.awaitStatus(s -> s.path("step").asInt() >= 3, "step 3");

        // every control route: no credential 401, a forged one 403; nothing requested (the numbers below start at #1)
        for (String route : List.of("api/checkpoint", "api/stop", "api/pause", "api/resume")) {
            assertEquals(401, post(run, route, null).statusCode(), route);
            HttpResponse<String> forged = post(run, route, "A".repeat(43));
            assertEquals(403, forged.statusCode(), route + ": " + forged.body());
        }
        for (String token : new String[] {null, "B".repeat(43)}) {
            HttpRequest.Builder put = HttpRequest.newBuilder(run.base.resolve("api/sample_prompts")).PUT(HttpRequest.BodyPublishers
                    .ofString(PROMPT));
            if (token != null) {
                put.header("Authorization", "Bearer " + token);
            }
            assertEquals(token == null ? 401 : 403, run.http.send(put.build(), HttpResponse.BodyHandlers.ofString()).statusCode());
        }
        Cli badToken = Cli.run("ctl", "pause", "--url", url, "--token-file", Files.writeString(tmp.resolve("forged"), "C".repeat(43))
                .toString());
        badToken.assertUsageError("--token-file", "403");

        Cli pause = Cli.run("ctl", "pause", "--url", url, "--keys", node.toString());
        assertEquals(0, pause.status(), pause.err());
        assertTrue(pause.out().contains("accepted as #1"), pause.out());
        JsonNode paused = run.awaitStatus(s -> s.path("phase").asText().equals("paused"), "phase paused");
        int pausedAt = paused.path("step").asInt(); // rank 0 reports the step before the control it applied after it
        Thread.sleep(2500);
        assertEquals(pausedAt, run.json("api/status").path("step").asInt(), "no step while paused");

        Path prompts = Files.writeString(tmp.resolve("new_prompts.txt"), PROMPT + "\n");
        Cli p = Cli.run("ctl", "prompts", "--url", url, "--keys", node.toString(), "--prompts", prompts.toString());
        assertEquals(0, p.status(), p.err());
        run.awaitStatus(s -> s.path("message").asText().startsWith("sample_prompts applied"), "prompts applied while paused");
        Cli checkpoint = Cli.run("ctl", "checkpoint", "--url", url, "--keys", node.toString());
        assertEquals(0, checkpoint.status(), checkpoint.err());
        Path state = run.out.resolve("checkpoints").resolve(String.format("step-%06d", pausedAt)).resolve("trainer_state.json");
        run.awaitStatus(s -> Files.exists(state), "the checkpoint of step " + pausedAt + " while paused");
        JsonNode control = MonitoredRun.JSON.readTree(state.toFile()).path("run_control");
        assertEquals(PROMPT + "\n", control.path("sample_prompts").asText(), control.toString());
        assertEquals("txt", control.path("sample_prompts_format").asText());
        assertEquals(pausedAt, run.json("api/status").path("step").asInt(), "still paused after the checkpoint");

        Cli resume = Cli.run("ctl", "resume", "--url", url, "--keys", node.toString());
        assertEquals(0, resume.status(), resume.err());
        run.awaitStatus(s -> s.path("phase").asText().equals("running") && s.path("step").asInt() > pausedAt, "steps after resume");
        Cli again = Cli.run("ctl", "resume", "--url", url, "--keys", node.toString());
        assertEquals(1, again.status(), again.out() + again.err());
        assertTrue(again.err().contains("not paused"), again.err());

        // the new prompt is drawn at the next sampling step
        run.awaitStatus(s -> samplePrompts(run.out).stream().anyMatch(t -> t.contains(PROMPT)), "a sample of the new prompt");

        Cli stop = Cli.run("ctl", "stop", "--url", url, "--keys", node.toString());
        assertEquals(0, stop.status(), stop.err());
        Cli end = run.train.get(180, TimeUnit.SECONDS);
        assertEquals(0, end.status(), end.out() + end.err());
        assertTrue(end.err().contains("stopped by a control request after step"), end.err());
        // stderr is no terminal here: the launcher names the command that derives the token, never the token itself
        assertTrue(end.err().contains("control: dreamcluster ctl checkpoint|stop|pause|resume|prompts --url " + url), end.err());
        assertFalse(end.err().contains("#token="), "no token in a log");
        assertTrue(Files.exists(run.out.resolve("final").resolve("model_index.json")), "final model written");

        List<JsonNode> steps = new ArrayList<>();
        List<JsonNode> controls = new ArrayList<>();
        for (String line : Files.readAllLines(run.out.resolve("metrics.jsonl"))) {
            JsonNode n = MonitoredRun.JSON.readTree(line);
            (n.has("control") ? controls : steps).add(n);
        }
        int last = steps.get(steps.size() - 1).path("step").asInt();
        assertTrue(last < MAX_STEPS, "stopped early: " + last);
        assertEquals(List.of("pause", "sample_prompts", "checkpoint", "resume", "stop"), controls.stream().map(n -> n.path("control")
                .asText()).toList(), controls.toString());
        assertEquals(List.of(1L, 2L, 3L, 4L, 5L), controls.stream().map(n -> n.path("seq").asLong()).toList());
        assertEquals(last, controls.get(4).path("step").asInt(), "the stop came after the last step");
        assertTrue(Files.exists(run.out.resolve("checkpoints").resolve(String.format("step-%06d", last)).resolve("trainer_state.json")));

        // a resume of the stop's checkpoint (one process) samples the prompts the run had, not the file's
        int nextSample = (last / SAMPLE_STEPS + 1) * SAMPLE_STEPS;
        Path resumed = tmp.resolve("resumed");
        Cli r = Cli.run("train", "--config", tmp.resolve("train.json").toString(), "--resume", run.out.resolve("checkpoints")
                .resolve(String.format("step-%06d", last)).toString(), "--max_steps", Integer.toString(nextSample), "--out", resumed.toString());
        assertEquals(0, r.status(), r.out() + r.err());
        List<String> drawn = samplePrompts(resumed);
        assertFalse(drawn.isEmpty(), "the resumed run drew samples at step " + nextSample);
        assertTrue(drawn.stream().allMatch(t -> t.contains(PROMPT)), "only the run's prompts: " + drawn);
        System.out.printf("live control: paused after step %d, checkpoint and prompts while paused, stopped after step %d of %d;"
                + " the resume drew %d sample(s) of the new prompt at step %d%n", pausedAt, last, MAX_STEPS, drawn.size(), nextSample);
    }

    private static HttpResponse<String> post(MonitoredRun run, String path, String token) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(run.base.resolve(path)).timeout(Duration.ofSeconds(20))
                .POST(HttpRequest.BodyPublishers.noBody());
        if (token != null) {
            b.header("Authorization", "Bearer " + token);
        }
        return run.http.send(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    /** The prompts of the samples written so far (each image's .txt beside it). */
    private static List<String> samplePrompts(Path out) {
        Path dir = out.resolve("samples");
        if (!Files.isDirectory(dir)) {
            return List.of();
        }
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(f -> f.toString().endsWith(".txt")).map(f -> {
                try {
                    return Files.readString(f);
                } catch (java.io.IOException e) {
                    return ""; // being written
                }
            }).toList();
        } catch (java.io.IOException e) {
            return List.of();
        }
    }
}
