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

    @picocli.CommandLine.Mixin
    DeviceOptions device = new DeviceOptions();

    @Override
    public Integer call() throws Exception {
        Nodes.hostPort(seed, "--seed");
        String[] b = Nodes.hostPort(bind, "--bind");
        device.apply(); // gpu:N: the CUDA libtorch 2.7.1+cu128 is checked and set before DJL loads
        dev.dreamcluster.worker.node.WorkerCompute compute = dev.dreamcluster.worker.node.WorkerCompute.probe(device.device, device.collective);
        if ("nccl".equals(device.collective) && compute.offer().ncclUniqueId().isEmpty()) {
            throw dev.dreamcluster.config.ConfigError.invalid("--collective", "nccl", "ring or auto here: " + compute.offer().notNccl());
        }
        String[] d = data == null ? new String[] {b[0], "0"} : Nodes.hostPort(data, "--data");
        ServerSocketChannel server = ServerSocketChannel.open().bind(new InetSocketAddress(d[0], Integer.parseInt(d[1])));
        InetSocketAddress bound = (InetSocketAddress) server.getLocalAddress();
        ActorSystem<Worker.Command> system = Nodes.start(Worker.create(server, d[0] + ":" + bound.getPort(), compute), "worker", b[0],
                Integer.parseInt(b[1]), seed);
        system.getWhenTerminated().toCompletableFuture().get(7, TimeUnit.DAYS);
        Worker.ComputeEnded end = Worker.ended;
        if (end == null || !end.ok()) {
            System.err.println("error: worker: " + (end == null ? "left the cluster before the run ended" : end.message()));
            return 3;
        }
        return 0;
    }
}
