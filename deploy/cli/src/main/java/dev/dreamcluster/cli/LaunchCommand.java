package dev.dreamcluster.cli;

import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.config.Json;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code dreamcluster launch}: the coordinator in this process and, for every slot of every host in
 * a DeepSpeed hostfile, one worker: over ssh ({@code ssh -tt}, so that ending the ssh client, as
 * Ctrl-C here does, hangs up the remote worker too) or, for localhost, as a local process. Each host
 * needs the same distribution at {@code --remote_dir} and the model, data and train.json at the
 * paths train.json names (or at --model/--data, the same on every host). Without ssh, start
 * {@code dreamcluster worker --join} on each host by hand.
 */
@Command(name = "launch", mixinStandardHelpOptions = true,
        description = "Start the coordinator here and the workers of a hostfile (HOST slots=N) over ssh; exits when the run ends.")
final class LaunchCommand implements Callable<Integer> {
    @Option(names = "--hostfile", required = true, paramLabel = "FILE", description = "lines of HOST slots=N (DeepSpeed's format)")
    Path hostfile;

    @Option(names = "--config", required = true, paramLabel = "train.json")
    Path config;

    @Option(names = "--bind", paramLabel = "HOST:PORT", defaultValue = "127.0.0.1:25520",
            description = "the coordinator's address, reachable from every host (a fixed port)")
    String bind;

    @Option(names = "--max_steps", paramLabel = "K")
    Integer maxSteps;

    @Option(names = "--device", paramLabel = "D", defaultValue = "cpu",
            description = "cpu, or gpu: slot i of a host runs on its GPU i (--device gpu:i)")
    String device;

    @Option(names = "--remote_dir", paramLabel = "DIR", description = "where the distribution is on every host (default: this one's)")
    String remoteDir;

    @Option(names = "--ssh", paramLabel = "CMD", defaultValue = "ssh", description = "the ssh client")
    String ssh;

    @Option(names = "--model", paramLabel = "DIR", description = "every host's copy of the model (default: train.json's path)")
    String model;

    @Option(names = "--data", paramLabel = "DIR", description = "every host's copy of the data (default: train.json's path)")
    String data;

    @Option(names = "--dry_run", description = "print the worker command lines and exit")
    boolean dryRun;

    /** The same key folder path on every host (--keys DIR), or --insecure for all of them. */
    @CommandLine.Mixin
    ClusterKeyFlags cluster;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        Hostfile hosts = Hostfile.read(hostfile);
        Nodes.HostPort b = Nodes.hostPort(bind, "--bind");
        if (b.port() == 0) {
            throw ConfigError.invalid("--bind", Json.quote(bind), "HOST:PORT with a fixed port (remote workers are told it before it binds)");
        }
        if (!device.equals("cpu") && !device.equals("gpu")) {
            throw ConfigError.invalid("--device", Json.quote(device), "cpu or gpu");
        }
        if (!Files.isRegularFile(config)) {
            throw new ConfigError("--config: " + Json.quote(config.toString()) + " does not exist or is not a file");
        }
        cluster.resolve(); // bad or missing keys: one line, before any host is touched
        List<String> keyArgs = cluster.keys != null ? List.of("--keys", cluster.keys.toAbsolutePath().toString()) : List.of("--insecure");
        List<String> paths = new ArrayList<>(keyArgs);
        if (model != null) {
            paths.addAll(List.of("--model", model));
        }
        if (data != null) {
            paths.addAll(List.of("--data", data));
        }
        List<List<String>> commands = workerCommands(hosts, bind, device, paths,
                remoteDir != null ? remoteDir : distributionRoot().toString(), ssh, System.getenv("DREAMCLUSTER_JAVA_OPTS"));
        if (dryRun) {
            for (List<String> c : commands) {
                spec.commandLine().getOut().println(String.join(" ", c.stream().map(LaunchCommand::shellQuote).toList()));
            }
            spec.commandLine().getOut().flush();
            return 0;
        }
        List<Process> workers = new ArrayList<>();
        Thread hook = new Thread(() -> workers.forEach(Process::destroy)); // Ctrl-C: ssh ends, the remote tty hangs up
        Runtime.getRuntime().addShutdownHook(hook);
        try {
            Path logs = Files.createDirectories(config.toAbsolutePath().getParent().resolve("launch-logs"));
            for (int i = 0; i < commands.size(); i++) {
                ProcessBuilder pb = new ProcessBuilder(commands.get(i)).redirectErrorStream(true)
                        .redirectOutput(logs.resolve("worker-" + i + ".log").toFile());
                pb.environment().putIfAbsent("DREAMCLUSTER_LOG_LEVEL", "INFO"); // a worker's log file shows its INFO lines
                workers.add(pb.start());
            }
            System.err.println("launched " + commands.size() + " workers on " + hosts.hosts().size() + " hosts (logs in " + logs + ")");
            // workers retry joining until the coordinator's node is up
            List<String> args = new ArrayList<>(List.of("--config", config.toString(), "--bind", bind,
                    "--min_workers", Integer.toString(hosts.totalSlots())));
            args.addAll(keyArgs);
            if (maxSteps != null) {
                args.addAll(List.of("--max_steps", maxSteps.toString()));
            }
            CommandLine coordinator = new CommandLine(new CoordinatorCommand());
            coordinator.setOut(spec.commandLine().getOut());
            coordinator.setErr(spec.commandLine().getErr());
            coordinator.setExecutionExceptionHandler(spec.commandLine().getExecutionExceptionHandler());
            int status = coordinator.execute(args.toArray(String[]::new));
            for (Process p : workers) {
                if (status != 0 || !p.waitFor(60, TimeUnit.SECONDS)) { // a failed run: stop them now
                    p.destroy();
                }
            }
            return status;
        } finally {
            workers.forEach(Process::destroyForcibly);
            Runtime.getRuntime().removeShutdownHook(hook);
        }
    }

    /**
     * One command per slot, in hostfile order: a local process for localhost, else ssh HOST with one
     * remote shell line. Each worker binds its host's name (others reach it there) on any free port.
     */
    static List<List<String>> workerCommands(Hostfile hosts, String coordinator, String device, List<String> paths, String dir,
            String ssh, String javaOpts) {
        List<List<String>> out = new ArrayList<>();
        for (Hostfile.Host h : hosts.hosts()) {
            for (int slot = 0; slot < h.slots(); slot++) {
                List<String> worker = new ArrayList<>(List.of(dir + "/bin/dreamcluster", "worker", "--join", coordinator,
                        "--bind", h.name() + ":0"));
                worker.addAll(paths);
                if (device.equals("gpu")) {
                    worker.addAll(List.of("--device", "gpu:" + slot));
                }
                if (Hostfile.isLocal(h.name())) {
                    out.add(worker);
                    continue;
                }
                String line = (javaOpts == null || javaOpts.isBlank() ? "" : "DREAMCLUSTER_JAVA_OPTS=" + shellQuote(javaOpts) + " ")
                        + "exec " + String.join(" ", worker.stream().map(LaunchCommand::shellQuote).toList());
                List<String> remote = new ArrayList<>(List.of(ssh.split(" ")));
                remote.addAll(List.of("-tt", "-o", "BatchMode=yes", h.name(), line));
                out.add(remote);
            }
        }
        return out;
    }

    /**
     * The folder holding bin/dreamcluster and deploy/cli/target/dist/lib (this JVM's), else the one
     * above the working directory that holds bin/dreamcluster (tests run in a module folder), else the
     * working directory.
     */
    static Path distributionRoot() {
        try {
            Path jar = Path.of(LaunchCommand.class.getProtectionDomain().getCodeSource().getLocation().toURI());
            if (jar.toString().endsWith(".jar")) {
                Path root = repositoryRoot(jar.getParent());
                if (Files.isRegularFile(root.resolve("bin/dreamcluster"))) {
                    return root;
                }
            }
        } catch (Exception ignored) {
            // not run from a jar (tests): fall back below
        }
        return repositoryRoot(Path.of("").toAbsolutePath());
    }

    /** The nearest folder at or above {@code from} holding bin/dreamcluster, else {@code from}. */
    static Path repositoryRoot(Path from) {
        for (Path p = from.toAbsolutePath(); p != null; p = p.getParent()) {
            if (Files.isRegularFile(p.resolve("bin/dreamcluster"))) {
                return p;
            }
        }
        return from.toAbsolutePath();
    }

    static String shellQuote(String s) {
        return s.matches("[A-Za-z0-9_./:=@%+,-]+") ? s : "'" + s.replace("'", "'\\''") + "'";
    }
}
