package dev.dreamcluster.cli;

import akka.actor.typed.ActorSystem;
import dev.dreamcluster.worker.node.Worker;
import java.net.InetSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code dreamcluster worker}: one worker node (one per GPU, or per CPU process). */
@Command(name = "worker", mixinStandardHelpOptions = true,
        description = "Join a cluster as a worker; train the coordinator's run; exit when it ends (0 ok, 3 failed).")
final class WorkerCommand implements Callable<Integer> {
    @Option(names = "--seed", required = true, paramLabel = "HOST:PORT", description = "the coordinator's cluster address")
    String seed;

    @Option(names = "--bind", paramLabel = "HOST:PORT", defaultValue = "127.0.0.1:0", description = "this node's cluster address")
    String bind;

    @Option(names = "--data", paramLabel = "HOST:PORT", description = "ring socket address (default: bind host, any port)")
    String data;

    @Option(names = "--device", paramLabel = "D", defaultValue = "cpu", description = "cpu (gpu:N needs a libtorch with CUDA)")
    String device;

    @picocli.CommandLine.Mixin
    ClusterKeyFlags cluster;

    @Override
    public Integer call() throws Exception {
        ClusterKeys.NodeKeys keys = cluster.resolve();
        Nodes.hostPort(seed, "--seed");
        String[] b = Nodes.hostPort(bind, "--bind");
        if (!device.equals("cpu")) {
            throw dev.dreamcluster.config.ConfigError.invalid("--device", "\"" + device + "\"",
                    "cpu: this build's DJL has the CPU libtorch only (set PYTORCH_LIBRARY_PATH to a CUDA libtorch 2.7.1 for GPUs)");
        }
        String[] d = data == null ? new String[] {b[0], "0"} : Nodes.hostPort(data, "--data");
        ServerSocketChannel server = ServerSocketChannel.open().bind(new InetSocketAddress(d[0], Integer.parseInt(d[1])));
        InetSocketAddress bound = (InetSocketAddress) server.getLocalAddress();
        ActorSystem<Worker.Command> system = Nodes.start(Worker.create(server, d[0] + ":" + bound.getPort()), "worker", b[0],
                Integer.parseInt(b[1]), seed, keys);
        system.getWhenTerminated().toCompletableFuture().get(7, TimeUnit.DAYS);
        Worker.ComputeEnded end = Worker.ended;
        if (end == null || !end.ok()) {
            System.err.println("error: worker: " + (end == null ? "left the cluster before the run ended" : end.message()));
            return 3;
        }
        return 0;
    }
}
