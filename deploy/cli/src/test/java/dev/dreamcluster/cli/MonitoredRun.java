package dev.dreamcluster.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

/**
 * {@code train --workers 2 --http 127.0.0.1:PORT} of the tiny example started in this JVM (as a user
 * would, through Main), with an HTTP client for its monitoring server.
 */
final class MonitoredRun {
    static final ObjectMapper JSON = new ObjectMapper();

    final Path out;
    final URI base;
    final CompletableFuture<Cli> train;
    final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    private MonitoredRun(Path out, URI base, CompletableFuture<Cli> train) {
        this.out = out;
        this.base = base;
        this.train = train;
    }

    /** Starts the run ({@code saveEvery} > 0 overrides save_every_n_steps) and waits until /alive answers. */
    static MonitoredRun start(Path tmp, int maxSteps, int saveEvery) throws Exception {
        return start(tmp, maxSteps, t -> {
            if (saveEvery > 0) {
                t.put("save_every_n_steps", saveEvery);
            }
        });
    }

    /** As above, with {@code edit} applied to the example's train.json and {@code extraArgs} after train's own. */
    static MonitoredRun start(Path tmp, int maxSteps, java.util.function.Consumer<com.fasterxml.jackson.databind.node.ObjectNode> edit,
            String... extraArgs) throws Exception {
        Path trainJson = ClusterTrainingTest.example(tmp);
        com.fasterxml.jackson.databind.node.ObjectNode cfg = (com.fasterxml.jackson.databind.node.ObjectNode)
                dev.dreamcluster.config.Json.MAPPER.readTree(trainJson.toFile());
        edit.accept(cfg);
        Files.writeString(trainJson, cfg.toPrettyString());
        Path out = tmp.resolve("run");
        int port = ClusterTrainingTest.freePort();
        List<String> args = new ArrayList<>(List.of("train", "--config", trainJson.toString(), "--workers", "2", "--max_steps",
                Integer.toString(maxSteps), "--out", out.toString(), "--http", "127.0.0.1:" + port));
        args.addAll(List.of(extraArgs));
        CompletableFuture<Cli> train = CompletableFuture.supplyAsync(() -> Cli.run(args.toArray(String[]::new)));
        MonitoredRun run = new MonitoredRun(out, URI.create("http://127.0.0.1:" + port + "/"), train);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        while (true) {
            try {
                if (run.get("alive").statusCode() == 200) {
                    return run;
                }
            } catch (java.io.IOException notYet) {
                // the coordinator node is still starting
            }
            if (train.isDone() || System.nanoTime() > deadline) {
                throw new AssertionError("the monitoring server never answered /alive: " + (train.isDone() ? train.get() : "timeout"));
            }
            Thread.sleep(100);
        }
    }

    HttpResponse<String> get(String path) throws Exception {
        return http.send(HttpRequest.newBuilder(base.resolve(path)).timeout(Duration.ofSeconds(20)).build(),
                HttpResponse.BodyHandlers.ofString());
    }

    JsonNode json(String path) throws Exception {
        HttpResponse<String> r = get(path);
        if (r.statusCode() != 200) {
            throw new AssertionError(path + ": HTTP " + r.statusCode() + " " + r.body());
        }
        return JSON.readTree(r.body());
    }

    /** Polls /api/status until {@code until} holds. */
    JsonNode awaitStatus(Predicate<JsonNode> until, String what) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(180);
        JsonNode s = json("api/status");
        while (!until.test(s)) {
            if (train.isDone() || System.nanoTime() > deadline) {
                throw new AssertionError("never saw " + what + "; last status " + s + (train.isDone() ? "; run: " + train.get() : ""));
            }
            Thread.sleep(100);
            s = json("api/status");
        }
        return s;
    }

    /** Waits for the run to end and returns its metrics.jsonl rows. */
    List<JsonNode> finish() throws Exception {
        Cli r = train.get(300, TimeUnit.SECONDS);
        if (r.status() != 0) {
            throw new AssertionError("train failed: " + r.out() + r.err());
        }
        List<JsonNode> rows = new ArrayList<>();
        for (String line : Files.readAllLines(out.resolve("metrics.jsonl"))) {
            rows.add(JSON.readTree(line));
        }
        return rows;
    }
}
