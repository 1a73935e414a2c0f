package dev.dreamcluster.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.config.Json;
import dev.dreamcluster.tokenizer.ClipTokenizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code dreamcluster tokenize}: a caption's CLIP token ids and count (the limit is 75 tokens). */
@Command(name = "tokenize", mixinStandardHelpOptions = true,
        description = "Tokenize a caption with a model's CLIP tokenizer; warns when it is truncated at 75 tokens.")
final class TokenizeCommand implements Callable<Integer> {
    @Option(names = "--model", required = true, paramLabel = "DIR", description = "diffusers folder (reads tokenizer/)")
    Path model;

    @Option(names = "--json", description = "{\"input_ids\": [77 ids], \"length\": N, \"truncated\": bool}")
    boolean json;

    @Parameters(paramLabel = "TEXT", arity = "1..*", description = "the caption")
    String[] text;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        Path dir = model.resolve("tokenizer");
        if (!Files.isRegularFile(dir.resolve("vocab.json")) || !Files.isRegularFile(dir.resolve("merges.txt"))) {
            throw new ConfigError("--model: " + Json.quote(model.toString()) + " has no tokenizer/vocab.json and merges.txt");
        }
        ClipTokenizer tok = ClipTokenizer.load(dir);
        ClipTokenizer.Encoding e = tok.encode(String.join(" ", text));
        var out = spec.commandLine().getOut();
        if (json) {
            ObjectNode n = Json.MAPPER.createObjectNode();
            ArrayNode ids = n.putArray("input_ids");
            Arrays.stream(e.inputIds()).forEach(ids::add);
            n.put("length", e.length());
            n.put("truncated", e.truncated());
            out.println(n);
        } else {
            out.println(Arrays.toString(e.inputIds()));
            out.println(e.length() + " tokens (limit " + (ClipTokenizer.MAX_LENGTH - 2) + ")");
        }
        out.flush();
        if (e.truncated()) {
            var err = spec.commandLine().getErr();
            err.println("warning: caption has " + e.length() + " tokens; everything after token "
                    + (ClipTokenizer.MAX_LENGTH - 2) + " is cut off");
            err.flush();
        }
        return 0;
    }
}
