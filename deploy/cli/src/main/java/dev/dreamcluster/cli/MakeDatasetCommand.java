package dev.dreamcluster.cli;

import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.worker.data.SyntheticDataset;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code dreamcluster make-dataset}: a synthetic captioned dataset of coloured shapes. */
@Command(name = "make-dataset", mixinStandardHelpOptions = true,
        description = "Write a small synthetic EveryDream dataset: coloured shapes with captions that describe them.")
final class MakeDatasetCommand implements Callable<Integer> {
    @Option(names = "--out", required = true, paramLabel = "DIR")
    Path out;

    @Option(names = "--count", paramLabel = "N", defaultValue = "48")
    int count;

    @Option(names = "--size", paramLabel = "PX", defaultValue = "64", description = "short side in pixels")
    int size;

    @Option(names = "--seed", paramLabel = "N", defaultValue = "0")
    long seed;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        if (count < 1) {
            throw ConfigError.invalid("--count", Integer.toString(count), "a number of images >= 1");
        }
        if (size < 16) {
            throw ConfigError.invalid("--size", Integer.toString(size), "at least 16 pixels");
        }
        SyntheticDataset.write(out, count, size, seed);
        spec.commandLine().getOut().println("wrote " + count + " captioned images to " + out);
        spec.commandLine().getOut().flush();
        return 0;
    }
}
