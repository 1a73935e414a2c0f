package dev.dreamcluster.cli;

import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.model.DiffusersFolder;
import dev.dreamcluster.run.TrainingHalted;
import dev.dreamcluster.worker.check.Doctor;
import dev.dreamcluster.worker.check.OpCheck;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code dreamcluster doctor}: the check every node runs before training, for a model at a resolution
 * and batch, at several libtorch thread counts: one row per op shape and form with its relative error
 * against float64 and a verdict. Exit 0 when every op has an exact form, 3 when one has none.
 */
@Command(name = "doctor", mixinStandardHelpOptions = true,
        description = "Measure every op the models run (at their real shapes) against float64 on this machine, as a training "
                + "node does before its first step; print op, shape, threads, form, error and verdict.")
final class DoctorCommand implements Callable<Integer> {
    @ArgGroup(exclusive = true)
    Source source = new Source();

    static final class Source {
        @Option(names = "--preset", paramLabel = "P", description = "tiny (default), medium, sd15 or sd21: their configs, zero weights")
        String preset;

        @Option(names = "--model", paramLabel = "DIR", description = "a diffusers folder (its configs)")
        Path model;
    }

    @Option(names = "--resolution", paramLabel = "PX", description = "image side in pixels (default: 64)")
    int resolution = 64;

    @Option(names = "--batch", paramLabel = "N", description = "images per micro-batch on one node (default: 2)")
    int batch = 2;

    @Option(names = "--threads", paramLabel = "N,..", split = ",",
            description = "libtorch intra-op thread counts to measure at (default: 1 and this machine's cores)")
    int[] threads;

    @Option(names = "--all", description = "print every row (default: the inexact ones and one summary line per op)")
    boolean all;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        if (resolution < 64 || resolution % 64 != 0) {
            throw ConfigError.invalid("--resolution", Integer.toString(resolution), "a multiple of 64, >= 64");
        }
        if (batch < 1 || batch > 64) {
            throw ConfigError.invalid("--batch", Integer.toString(batch), "1..64");
        }
        int cores = Runtime.getRuntime().availableProcessors();
        int[] t = threads != null ? threads : cores > 1 ? new int[] {1, cores} : new int[] {1};
        for (int n : t) {
            if (n < 1 || n > 1024) {
                throw ConfigError.invalid("--threads", Arrays.toString(t), "thread counts 1..1024");
            }
        }
        DiffusersFolder f = source.model != null ? DiffusersFolder.read(source.model)
                : ModelInfoCommand.layout(InitModelCommand.preset(source.preset == null ? "tiny" : source.preset));
        var out = spec.commandLine().getOut();
        out.println("doctor: " + Doctor.machine());
        out.printf("model %s, %d px, batch %d, threads %s; exact means relative L2 error <= %.0e against float64%n",
                source.model != null ? source.model : (source.preset == null ? "tiny" : source.preset), resolution, batch,
                Arrays.toString(t), OpCheck.TOLERANCE_FP32);
        out.flush();
        Doctor.Report r = Doctor.run(f, resolution, batch, t);
        out.printf("%-11s %-8s %-15s %-10s %s%n", "verdict", "threads", "form", "error", "op and shape");
        long inexact = 0;
        for (OpCheck.Row row : r.rows()) {
            if (!row.exact()) {
                inexact++;
            }
            if (all || !row.exact()) {
                out.printf(Locale.ROOT, "%-11s %-8d %-15s %-10.2g %s%n", row.exact() ? "exact" : "NOT EXACT", row.threads(), row.form(),
                        row.error(), row.shape().key());
            }
        }
        double worst = r.rows().stream().filter(OpCheck.Row::exact).mapToDouble(OpCheck.Row::error).max().orElse(0);
        out.printf(Locale.ROOT, "%d measurements, %d not exact (a convolution needs one exact form of three); worst exact error %.2g%n",
                r.rows().size(), inexact, worst);
        out.println(r.allExact() ? "verdict: every op has an exact form here; training is safe on this machine"
                : "verdict: an op has no exact form here; a training node refuses to start (exit 3)");
        out.flush();
        return r.allExact() ? 0 : TrainingHalted.EXIT;
    }
}
