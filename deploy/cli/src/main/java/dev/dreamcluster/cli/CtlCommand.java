package dev.dreamcluster.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.config.Json;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code dreamcluster ctl ACTION}: acts on a running run through its coordinator's authenticated
 * control routes (the same ones the dashboard's buttons use). The token is derived from the
 * coordinator node's key folder ({@code --keys}, as the launcher names it in its "control:" line) or
 * read from a file; it never goes on the command line, where every local user could read it.
 * Prints the coordinator's one-line answer; exit 0 when accepted, 1 when refused (409: the run
 * stops already, is not paused, ...), 2 for bad input or a refused credential.
 */
@Command(name = "ctl", mixinStandardHelpOptions = true,
        description = "Act on a running run: checkpoint (commit one at the next step boundary), stop (commit, write final/, end),"
                + " pause, resume, prompts (replace the sample prompts); url prints the dashboard's control URL.")
final class CtlCommand implements Callable<Integer> {
    enum Action {
        checkpoint, stop, pause, resume, prompts, url
    }

    @Parameters(index = "0", paramLabel = "ACTION", description = "checkpoint, stop, pause, resume, prompts, or url (print the"
            + " dashboard's control URL, token included, for a browser)")
    Action action;

    @Option(names = "--url", required = true, paramLabel = "URL", description = "the coordinator's monitoring URL (the launcher prints it)")
    URI url;

    @Option(names = "--keys", paramLabel = "DIR", description = "the coordinator node's key folder: the token is derived from its key")
    Path keys;

    @Option(names = "--token-file", paramLabel = "FILE", description = "a file holding the token (the text after #token= in the control URL)")
    Path tokenFile;

    @Option(names = "--prompts", paramLabel = "FILE", description = "for prompts: a sample prompts file (.txt, a prompt a line, or .json)")
    Path prompts;

    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        String token = token();
        if (action == Action.url) {
            var out = spec.commandLine().getOut();
            out.println(base() + "#token=" + token); // the fragment: a browser reads it and never sends it
            out.flush();
            return 0;
        }
        String path = action == Action.prompts ? "api/sample_prompts" : "api/" + action.name();
        HttpRequest.Builder req = HttpRequest.newBuilder(base().resolve(path)).timeout(Duration.ofSeconds(30))
                .header("Authorization", "Bearer " + token);
        if (action == Action.prompts) {
            if (prompts == null) {
                throw new ConfigError("--prompts: required for ctl prompts (a .txt or .json sample prompts file)");
            }
            String name = prompts.getFileName().toString().toLowerCase(Locale.ROOT);
            if (!name.endsWith(".txt") && !name.endsWith(".json")) {
                throw ConfigError.invalid("--prompts", Json.quote(prompts.toString()), "a .txt or .json sample prompts file");
            }
            req.header("Content-Type", name.endsWith(".json") ? "application/json" : "text/plain; charset=UTF-8")
                    .PUT(HttpRequest.BodyPublishers.ofString(read(prompts, "--prompts")));
        } else {
            if (prompts != null) {
                throw new ConfigError("--prompts: only for ctl prompts, not " + action);
            }
            req.POST(HttpRequest.BodyPublishers.noBody());
        }
        HttpResponse<String> res;
        try {
            res = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build().send(req.build(),
                    HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new ConfigError("--url: cannot reach " + url + " (" + e.getMessage() + ")");
        }
        String message;
        try {
            JsonNode n = Json.MAPPER.readTree(res.body());
            message = n.path("message").asText(res.body());
        } catch (IOException e) {
            message = res.body();
        }
        var out = spec.commandLine().getOut();
        if (res.statusCode() == 202) {
            out.println(message);
            out.flush();
            return 0;
        }
        if (res.statusCode() == 401 || res.statusCode() == 403 || res.statusCode() == 400) {
            throw new ConfigError((res.statusCode() == 400 ? "--prompts" : keys != null ? "--keys" : "--token-file") + ": "
                    + res.statusCode() + " " + message);
        }
        var err = spec.commandLine().getErr();
        err.println("refused (" + res.statusCode() + "): " + message);
        err.flush();
        return 1;
    }

    private URI base() {
        String s = url.toString();
        if (url.getScheme() == null || !(url.getScheme().equals("http") || url.getScheme().equals("https")) || url.getHost() == null) {
            throw ConfigError.invalid("--url", Json.quote(s), "http://HOST:PORT/ (the coordinator's monitoring URL)");
        }
        int hash = s.indexOf('#');
        if (hash >= 0) {
            s = s.substring(0, hash); // the printed control URL: its fragment holds the token, never sent
        }
        return URI.create(s.endsWith("/") ? s : s + "/");
    }

    private String token() {
        if ((keys == null) == (tokenFile == null)) {
            throw new ConfigError("--keys: give one of --keys DIR (the coordinator node's key folder) or --token-file FILE");
        }
        if (keys != null) {
            ClusterKeys.NodeKeys k = ClusterKeys.load(keys, "--keys");
            return ClusterKeys.controlToken(k, runId());
        }
        String t = read(tokenFile, "--token-file").trim();
        if (t.startsWith("#token=")) {
            t = t.substring("#token=".length());
        }
        if (t.isEmpty() || !t.matches("[A-Za-z0-9_-]+")) {
            throw ConfigError.invalid("--token-file", Json.quote(tokenFile.toString()), "a file holding the token (base64url characters)");
        }
        return t;
    }

    /** The run id the token is derived with, from {@code GET /api/control} (public, like every read route). */
    private long runId() {
        HttpResponse<String> res;
        try {
            res = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build().send(HttpRequest.newBuilder(base()
                    .resolve("api/control")).timeout(Duration.ofSeconds(30)).build(), HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new ConfigError("--url: cannot reach " + url + " (" + e.getMessage() + ")");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new ConfigError("--url: interrupted");
        }
        JsonNode n;
        try {
            n = res.statusCode() == 200 ? Json.MAPPER.readTree(res.body()) : null;
        } catch (IOException e) {
            n = null;
        }
        if (n == null || !n.path("run_id").isTextual()) {
            throw new ConfigError("--url: " + url + " is not a coordinator with control on (GET api/control: " + res.statusCode() + ")");
        }
        return Long.parseLong(n.get("run_id").asText());
    }

    private static String read(Path file, String flag) {
        try {
            return Files.readString(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw ConfigError.invalid(flag, Json.quote(file.toString()), "a readable file (" + e.getMessage() + ")");
        }
    }
}
