package dev.dreamcluster.cli;

import dev.dreamcluster.config.ConfigError;
import java.io.PrintWriter;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** Entry point of {@code bin/dreamcluster}. */
@Command(
        name = "dreamcluster",
        mixinStandardHelpOptions = true,
        version = "dreamcluster 0.1.0",
        description = "Distributed Stable Diffusion fine-tuning (EveryDream2-compatible configs).",
        subcommands = {TrainCommand.class, ResolveCommand.class, OptimReplayCommand.class, InitModelCommand.class,
            ModelInfoCommand.class, TokenizeCommand.class, DoctorCommand.class, MakeDatasetCommand.class, BenchCommand.class,
            CoordinatorCommand.class, WorkerCommand.class, MonitorCommand.class, LaunchCommand.class, KeysCommand.class,
            TrainVaeCommand.class, CheckSamplesCommand.class, CtlCommand.class, CommandLine.HelpCommand.class})
public final class Main {
    /** User errors (bad flags, files, values): one line, exit 2. */
    public static final int EXIT_USAGE = 2;

    public static void main(String[] args) {
        System.exit(run(args));
    }

    /** Runs the command line and returns the exit status (tests call this). */
    public static int run(String... args) {
        return run(new PrintWriter(System.out, true), new PrintWriter(System.err, true), args);
    }

    /** Runs with the given stdout and stderr. */
    public static int run(PrintWriter out, PrintWriter err, String... args) {
        CommandLine cl = new CommandLine(new Main());
        cl.setOut(out);
        cl.setErr(err);
        cl.setParameterExceptionHandler(Main::onBadParameter);
        cl.setExecutionExceptionHandler(Main::onFailure);
        return cl.execute(args);
    }

    private static int onBadParameter(CommandLine.ParameterException e, String[] args) {
        PrintWriter err = e.getCommandLine().getErr();
        err.println("error: " + Main.oneLine(e.getMessage()) + " (see '" + e.getCommandLine().getCommandSpec().qualifiedName()
                + " --help')");
        err.flush();
        return EXIT_USAGE;
    }

    private static int onFailure(Exception e, CommandLine cl, CommandLine.ParseResult parsed) {
        PrintWriter err = cl.getErr();
        if (e instanceof ConfigError || e instanceof dev.dreamcluster.model.ModelError) {
            err.println("error: " + oneLine(e.getMessage()));
            err.flush();
            return EXIT_USAGE;
        }
        if (e instanceof dev.dreamcluster.run.TrainingHalted) { // wrong arithmetic or no training: one line, exit 3
            err.println("error: " + oneLine(e.getMessage()));
            err.flush();
            return dev.dreamcluster.run.TrainingHalted.EXIT;
        }
        // Not a user error: a bug or an environment failure. The trace is what a maintainer needs.
        e.printStackTrace(err);
        err.flush();
        return 1;
    }

    static String oneLine(String s) {
        return s == null ? "" : s.replace('\n', ' ').replace('\r', ' ').trim();
    }
}
