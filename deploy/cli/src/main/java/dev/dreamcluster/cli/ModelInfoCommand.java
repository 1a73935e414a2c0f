package dev.dreamcluster.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dreamcluster.config.Json;
import dev.dreamcluster.freeze.Component;
import dev.dreamcluster.model.DiffusersFolder;
import dev.dreamcluster.model.ParamManifest;
import dev.dreamcluster.model.ParamSpec;
import dev.dreamcluster.model.Presets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code dreamcluster model-info}: parameter and tensor counts, or every tensor, from configs alone. */
@Command(name = "model-info", mixinStandardHelpOptions = true,
        description = "Parameter counts (from configs; no weights are loaded) of a preset or a diffusers folder.")
final class ModelInfoCommand implements Callable<Integer> {
    @ArgGroup(exclusive = true, multiplicity = "1")
    Source source;

    @Option(names = "--json", description = "counts as JSON")
    boolean json;

    @Option(names = "--tensors", description = "one line per tensor: component<TAB>name<TAB>[d0, d1, ...]")
    boolean tensors;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    static final class Source {
        @Option(names = "--preset", paramLabel = "P", description = "tiny, medium, sd15 or sd21")
        String preset;

        @Option(names = "--model", paramLabel = "DIR", description = "diffusers folder")
        Path model;
    }

    @Override
    public Integer call() {
        DiffusersFolder f = source.model != null ? DiffusersFolder.read(source.model) : layout(InitModelCommand.preset(source.preset));
        var out = spec.commandLine().getOut();
        if (tensors) {
            for (Component c : Component.values()) {
                for (ParamSpec p : f.manifest(c)) {
                    out.println(c.folder() + "\t" + p.name() + "\t" + p.shapeString());
                }
            }
        } else if (json) {
            ObjectNode root = Json.MAPPER.createObjectNode();
            for (Component c : List.of(Component.UNET, Component.TEXT_ENCODER, Component.VAE)) {
                List<ParamSpec> m = f.manifest(c);
                ObjectNode n = root.putObject(c.folder());
                n.put("parameters", ParamManifest.count(m));
                n.put("tensors", m.size());
                if (c == Component.TEXT_ENCODER) {
                    n.put("num_layers", f.textEncoder().numHiddenLayers());
                }
            }
            out.println(root);
        } else {
            long total = 0;
            for (Component c : Component.values()) {
                List<ParamSpec> m = f.manifest(c);
                total += ParamManifest.count(m);
                out.printf("%-13s %,15d parameters in %4d tensors%n", c.folder(), ParamManifest.count(m), m.size());
            }
            out.printf("%-13s %,15d parameters%n", "total", total);
        }
        out.flush();
        return 0;
    }

    static DiffusersFolder layout(Presets p) {
        return new DiffusersFolder(null, p.unet, p.textEncoder, p.vae, null);
    }
}
