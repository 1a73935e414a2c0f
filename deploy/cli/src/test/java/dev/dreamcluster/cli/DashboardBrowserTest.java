package dev.dreamcluster.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.WebSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The dashboard in Debian's headless Chromium during a real {@code train --workers 2} run, driven
 * over the DevTools protocol (a WebSocket from java.net.http): the step number it shows advances
 * with the live event stream, the loss chart has points, and a screenshot is saved to
 * {@code target/dashboard.png}. Skipped where chromium is not installed.
 */
class DashboardBrowserTest {
    static final int STEPS = 30;
    static final Path CHROMIUM = Path.of("/usr/bin/chromium");
    static final Pattern DEVTOOLS = Pattern.compile("DevTools listening on (ws://\\S+)");

    @Test
    void theDashboardShouldFollowTheRunLive(@TempDir Path tmp) throws Exception {
        assumeTrue(Files.isExecutable(CHROMIUM), "chromium is not installed (" + CHROMIUM + "; Debian package chromium)");
        Path keys = tmp.resolve("keys");
        assertEquals(0, Cli.run("keys", "--out", keys.toString()).status());
        MonitoredRun run = MonitoredRun.start(tmp, STEPS, t -> { }, "--keys", keys.resolve("node").toString());
        // the control URL the launcher prints: the token in the fragment, which the page reads and never sends
        Cli url = Cli.run("ctl", "url", "--url", run.base.toString(), "--keys", keys.resolve("node").toString());
        assertEquals(0, url.status(), url.err());
        String controlUrl = url.out().strip();
        assertTrue(controlUrl.startsWith(run.base + "#token="), controlUrl);
        Process browser = new ProcessBuilder(CHROMIUM.toString(), "--headless", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
                "--user-data-dir=" + Files.createDirectories(tmp.resolve("chromium-profile")), "--window-size=1280,1400",
                "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", controlUrl)
                .redirectErrorStream(true).start();
        try {
            URI devtools = devtoolsUrl(browser);
            try (DevTools page = DevTools.connect(pageTarget(run.http, devtools, run.base))) {
                List<Integer> seen = new ArrayList<>();
                int points = 0;
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(180);
                while (System.nanoTime() < deadline && !run.train.isDone()) {
                    // (while the page is still loading there is no #step yet)
                    JsonNode view = MonitoredRun.JSON.readTree(page.evaluate("JSON.stringify({step: +(document.getElementById('step')"
                            + "?.textContent || 0), points: (document.querySelector('#chart-loss polyline')?.getAttribute('points') || '')"
                            + ".trim().split(/\\s+/).filter(Boolean).length})"));
                    int step = view.get("step").asInt();
                    points = view.get("points").asInt();
                    if (step > 0 && (seen.isEmpty() || step != seen.get(seen.size() - 1))) {
                        seen.add(step);
                    }
                    if (seen.size() >= 3 && points >= 3) {
                        break;
                    }
                    Thread.sleep(200);
                }
                assertTrue(seen.size() >= 3, "the step shown advanced at least twice: " + seen);
                for (int i = 1; i < seen.size(); i++) {
                    assertTrue(seen.get(i) > seen.get(i - 1), "steps only go forward: " + seen);
                }
                assertTrue(points >= 3, "the loss chart has points: " + points);
                pressPauseThenResume(page, run);
                JsonNode status = run.json("api/status");
                assertTrue(seen.get(seen.size() - 1) <= status.get("step").asInt(), "the page shows a step the server reported");
                assertEquals("live", page.evaluate("document.getElementById('live').textContent"));
                Thread.sleep(1500); // one status poll: members, split and ETA filled in for the picture
                byte[] png = Base64.getDecoder().decode(page.call("Page.captureScreenshot", Map.of("format", "png"))
                        .get("data").asText());
                assertArrayEquals(new byte[] {(byte) 0x89, 'P', 'N', 'G'}, Arrays.copyOf(png, 4));
                Path shot = Files.createDirectories(Path.of("target")).resolve("dashboard.png");
                Files.write(shot, png);
                System.out.printf("dashboard screenshot %s (%d bytes); steps seen %s, loss chart %d points%n", shot.toAbsolutePath(),
                        png.length, seen, points);
            }
        } finally {
            browser.descendants().forEach(ProcessHandle::destroyForcibly);
            browser.destroyForcibly();
            browser.waitFor(10, TimeUnit.SECONDS);
        }
        List<JsonNode> rows = run.finish();
        assertEquals(STEPS, rows.get(rows.size() - 1).get("step").asInt(), rows.toString());
    }

    /**
     * The Pause button, pressed in the page: the run pauses (the page's badge and the server agree, and
     * the step stands still); then Resume: it trains on. The page took its token from the URL's fragment
     * and dropped it from the address bar.
     */
    static void pressPauseThenResume(DevTools page, MonitoredRun run) throws Exception {
        assertEquals("false", page.evaluate("String(location.href.includes('token'))"), "the token left the address bar");
        assertEquals("false", page.evaluate("String(document.getElementById('btn-pause').disabled)"), "control is on");
        page.evaluate("document.getElementById('btn-pause').click(), 'clicked'");
        awaitPage(page, "document.getElementById('phase').textContent", "paused");
        int pausedAt = run.awaitStatus(s -> s.path("phase").asText().equals("paused"), "phase paused").path("step").asInt();
        Thread.sleep(1500);
        assertEquals(pausedAt, run.json("api/status").path("step").asInt(), "no step while paused");
        page.evaluate("document.getElementById('btn-resume').click(), 'clicked'");
        awaitPage(page, "document.getElementById('phase').textContent", "running");
        run.awaitStatus(s -> s.path("step").asInt() > pausedAt, "a step after Resume");
        String log = page.evaluate("document.getElementById('control-log').textContent");
        assertTrue(log.contains("pause applied after step " + pausedAt) && log.contains("resume applied"), log);
        System.out.printf("dashboard buttons: Pause pressed, paused after step %d, Resume pressed, training on%n", pausedAt);
    }

    static void awaitPage(DevTools page, String expression, String value) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        String seen = page.evaluate(expression);
        while (!seen.equals(value)) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError(expression + ": never " + value + ", last " + seen);
            }
            Thread.sleep(100);
            seen = page.evaluate(expression);
        }
    }

    /** Chromium prints its DevTools WebSocket address on stderr once it listens. */
    static URI devtoolsUrl(Process browser) throws Exception {
        CompletableFuture<URI> url = CompletableFuture.supplyAsync(() -> {
            BufferedReader r = new BufferedReader(new InputStreamReader(browser.getInputStream(), StandardCharsets.UTF_8));
            try {
                StringBuilder text = new StringBuilder();
                for (String line; (line = r.readLine()) != null;) {
                    Matcher m = DEVTOOLS.matcher(line);
                    if (m.find()) {
                        // the drain thread owns the reader from here: it keeps chromium from blocking on a
                        // full pipe and closes the reader at chromium's exit
                        Thread drain = new Thread(() -> {
                            try (r) {
                                while (r.readLine() != null) {
                                    // discard
                                }
                            } catch (java.io.IOException ignored) {
                                // chromium was killed: the pipe is gone
                            }
                        });
                        drain.setDaemon(true);
                        drain.start();
                        return URI.create(m.group(1));
                    }
                    text.append(line).append('\n');
                }
                r.close();
                throw new AssertionError("chromium exited without a DevTools address:\n" + text);
            } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        });
        return url.get(60, TimeUnit.SECONDS);
    }

    /** The WebSocket of the page that shows the dashboard (from the DevTools HTTP endpoint's /json/list). */
    static URI pageTarget(HttpClient http, URI browserWs, URI dashboard) throws Exception {
        URI list = URI.create("http://" + browserWs.getHost() + ":" + browserWs.getPort() + "/json/list");
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (true) {
            JsonNode targets = MonitoredRun.JSON.readTree(http.send(HttpRequest.newBuilder(list).build(),
                    HttpResponse.BodyHandlers.ofString()).body());
            for (JsonNode t : targets) {
                if (t.path("type").asText().equals("page") && t.path("url").asText().startsWith(dashboard.toString())) {
                    return URI.create(t.get("webSocketDebuggerUrl").asText());
                }
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError("no page with " + dashboard + ": " + targets);
            }
            Thread.sleep(200);
        }
    }

    /** A minimal DevTools protocol client: one request, one reply matched by id. */
    static final class DevTools implements WebSocket.Listener, AutoCloseable {
        private final Map<Integer, CompletableFuture<JsonNode>> pending = new ConcurrentHashMap<>();
        private final AtomicInteger ids = new AtomicInteger();
        private final StringBuilder frame = new StringBuilder();
        private WebSocket socket;

        static DevTools connect(URI ws) throws Exception {
            DevTools d = new DevTools();
            d.socket = HttpClient.newHttpClient().newWebSocketBuilder().buildAsync(ws, d).get(30, TimeUnit.SECONDS);
            return d;
        }

        JsonNode call(String method, Map<String, Object> params) throws Exception {
            int id = ids.incrementAndGet();
            CompletableFuture<JsonNode> reply = new CompletableFuture<>();
            pending.put(id, reply);
            ObjectNode msg = MonitoredRun.JSON.createObjectNode().put("id", id).put("method", method);
            msg.set("params", MonitoredRun.JSON.valueToTree(params));
            socket.sendText(MonitoredRun.JSON.writeValueAsString(msg), true).get(10, TimeUnit.SECONDS);
            JsonNode r = reply.get(30, TimeUnit.SECONDS);
            if (r.has("error")) {
                throw new AssertionError(method + ": " + r.get("error"));
            }
            return r.get("result");
        }

        /** The string value of a JavaScript expression in the page. */
        String evaluate(String expression) throws Exception {
            JsonNode r = call("Runtime.evaluate", Map.of("expression", expression, "returnByValue", true));
            if (r.has("exceptionDetails")) {
                throw new AssertionError(expression + ": " + r.get("exceptionDetails"));
            }
            return r.at("/result/value").asText();
        }

        @Override
        public CompletionStage<?> onText(WebSocket ws, CharSequence data, boolean last) {
            frame.append(data);
            if (last) {
                try {
                    JsonNode msg = MonitoredRun.JSON.readTree(frame.toString());
                    CompletableFuture<JsonNode> reply = msg.has("id") ? pending.remove(msg.get("id").asInt()) : null;
                    if (reply != null) {
                        reply.complete(msg);
                    }
                } catch (Exception e) {
                    pending.values().forEach(f -> f.completeExceptionally(e));
                }
                frame.setLength(0);
            }
            ws.request(1);
            return null;
        }

        @Override
        public void close() {
            socket.sendClose(WebSocket.NORMAL_CLOSURE, "done").orTimeout(5, TimeUnit.SECONDS).exceptionally(e -> null).join();
        }
    }
}
