package dev.dreamcluster.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dreamcluster.config.Json;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Consumer;

/** A tiny model, a 4-image dataset and an optimizer.json made through the CLI, and train.json files over them. */
record TinyInputs(Path model, Path data, Path optimizer) {
    static TinyInputs make(Path dir, String optimizerName) {
        TinyInputs t = new TinyInputs(dir.resolve("model"), dir.resolve("data"), dir.resolve("optimizer.json"));
        assertEquals(0, Cli.run("init-model", "--preset", "tiny", "--out", t.model.toString()).status());
        assertEquals(0, Cli.run("make-dataset", "--out", t.data.toString(), "--count", "4", "--size", "64").status());
        try {
            Files.writeString(t.optimizer, "{\"base\": {\"optimizer\": \"" + optimizerName + "\", \"lr\": 1e-4}}");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return t;
    }

    /** A one-step train.json over these inputs, changed by {@code edit}. */
    Path trainJson(Path file, Consumer<ObjectNode> edit) throws IOException {
        ObjectNode n = Json.MAPPER.createObjectNode();
        n.put("data_root", data.toString());
        n.put("resume_ckpt", model.toString());
        n.put("optimizer_config", optimizer.toString());
        n.put("resolution", 64);
        n.put("batch_size", 2);
        n.put("max_steps", 1);
        n.put("val_count", 1);
        n.put("val_every_n_steps", 0);
        edit.accept(n);
        Files.writeString(file, n.toPrettyString());
        return file;
    }
}
