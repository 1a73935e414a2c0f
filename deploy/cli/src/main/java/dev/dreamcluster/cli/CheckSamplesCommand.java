package dev.dreamcluster.cli;

import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.worker.example.SampleCheck;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code dreamcluster check-samples}: whether a run's sample sheets show what their shapes captions
 * say ({@link SampleCheck}): one line per panel, then a summary; exit 0 when every panel's background
 * and foreground colours are the caption's, 1 otherwise.
 */
@Command(name = "check-samples", mixinStandardHelpOptions = true,
        description = "Check sample sheets whose prompts are shapes captions (\"a red circle on a blue background\"): each panel's"
                + " background (the border's dominant colour) and foreground (the centre's dominant other colour) against the caption,"
                + " and the shape read from the foreground's fill of its bounding box. Exit 0 when every panel's colours match.")
final class CheckSamplesCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "DIR", description = "a samples folder, or a run folder holding samples/")
    Path dir;

    @Option(names = "--step", paramLabel = "N", description = "only the sheets of this step (default: every step)")
    Integer step;

    @Option(names = "--shapes", description = "fail on a wrong shape too")
    boolean shapes;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        Path samples = Files.isDirectory(dir.resolve("samples")) ? dir.resolve("samples") : dir;
        if (!Files.isDirectory(samples)) {
            throw ConfigError.invalid("DIR", dir.toString(), "a folder of sample sheets");
        }
        List<SampleCheck.Result> results = SampleCheck.checkSamples(samples, step);
        var out = spec.commandLine().getOut();
        if (results.isEmpty()) {
            throw ConfigError.invalid("DIR", samples.toString(), "sample sheets (gsSSSSS-III-prompt.png) of shapes captions"
                    + (step != null ? " at step " + step : ""));
        }
        long colours = results.stream().filter(SampleCheck.Result::colorsMatch).count();
        long shapeOk = results.stream().filter(r -> r.colorsMatch() && r.shapeMatches()).count();
        results.forEach(r -> out.println(r.line()));
        out.println(colours + " of " + results.size() + " panels show their caption's colours; " + shapeOk
                + " also its shape");
        out.flush();
        boolean ok = colours == results.size() && (!shapes || shapeOk == results.size());
        return ok ? 0 : 1;
    }
}
