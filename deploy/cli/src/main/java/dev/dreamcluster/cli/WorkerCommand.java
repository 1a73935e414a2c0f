package dev.dreamcluster.cli;

import akka.actor.typed.ActorSystem;
import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.config.Json;
import dev.dreamcluster.worker.node.LocalPaths;
import dev.dreamcluster.worker.node.RingEndpoint;
import dev.dreamcluster.worker.node.Worker;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code dreamcluster worker}: one worker node (one per GPU, or per CPU process). It reads no config:
 * the coordinator sends the resolved run; this node brings its copies of the model and the data
 * (anywhere: the plan hash proves they hold the same bytes as the coordinator's).
 */
@Command(name = "worker", mixinStandardHelpOptions = true,
        description = "Join a cluster as a worker; train the coordinator's run; exit when it ends (0 ok, 3 failed).")
final class WorkerCommand implements Callable<Integer> {
    @Option(names = "--join", paramLabel = "HOST:PORT", description = "the coordinator's cluster address (or --discovery)")
    String join;

    @picocli.CommandLine.Mixin
    ClusterFormation formation;

    @picocli.CommandLine.Mixin
    NodeAddress address;

    @Option(names = "--ring_bind", paramLabel = "HOST:PORT", description = "where the ring (gradient) socket listens (default: bind host, any port)")
    String ringBind;

    @Option(names = "--ring_advertise", paramLabel = "HOST:PORT", description = "the ring address peers dial (default: --ring_bind)")
    String ringAdvertise;

    @Option(names = "--model", paramLabel = "DIR", description = "this node's copy of the model (default: the coordinator's path)")
    Path model;

    @Option(names = "--data", paramLabel = "DIR", description = "this node's copy of the data (default: the coordinator's path)")
    Path data;

    @Option(names = "--out", paramLabel = "DIR", description = "where this node writes checkpoints and final/ (default: the coordinator's)")
    Path out;

    @Option(names = "--resume", paramLabel = "CKPT", description = "this node's copy of the checkpoint the run resumes from")
    Path resume;

    @Option(names = "--join_timeout", paramLabel = "S", defaultValue = "1800",
            description = "seconds to reach the cluster at --join before giving up with exit 3 (default 1800; 0: keep trying)")
    int joinTimeout;

    @picocli.CommandLine.Mixin
    DeviceOptions device = new DeviceOptions();

    @picocli.CommandLine.Mixin
    ClusterKeyFlags cluster;

    @Override
    public Integer call() throws Exception {
        ClusterKeys.NodeKeys keys = cluster.resolve();
        if (join == null && !formation.bootstrap()) {
            throw new ConfigError("--join: required (the coordinator's HOST:PORT), unless the cluster forms through --discovery");
        }
        Nodes.HostPort seed = formation.bootstrap() ? null : Nodes.hostPort(join, "--join");
        if (joinTimeout < 0 || joinTimeout > 7 * 24 * 3600) {
            throw ConfigError.invalid("--join_timeout", Integer.toString(joinTimeout), "0 (keep trying) or 1..604800 seconds");
        }
        Nodes.HostPort b = address.bindAddress();
        Nodes.HostPort a = address.advertiseAddress();
        device.apply(); // gpu:N: the CUDA libtorch 2.7.1+cu128 is checked and set before DJL loads
        dev.dreamcluster.worker.node.WorkerCompute compute = dev.dreamcluster.worker.node.WorkerCompute.probe(device.device, device.collective,
                device.optimizerThreads, "on".equals(device.overlap), device.capacities(1)[0], device.stateOnDevice());
        if ("nccl".equals(device.collective) && compute.offer().ncclUniqueId().isEmpty()) {
            throw ConfigError.invalid("--collective", "nccl", "ring or auto here: " + compute.offer().notNccl());
        }
        for (var d : new Object[][] {{model, "--model"}, {data, "--data"}, {resume, "--resume"}}) {
            if (d[0] != null && !Files.isDirectory((Path) d[0])) {
                throw new ConfigError(d[1] + ": " + Json.quote(d[0].toString()) + " is not a folder");
            }
        }
        Nodes.HostPort ring = ringBind != null ? Nodes.hostPort(ringBind, "--ring_bind") : new Nodes.HostPort(b.host(), 0);
        Nodes.HostPort ringAdv = Nodes.hostPort(ringAdvertise, "--ring_advertise");
        RingEndpoint endpoint = new RingEndpoint(ring.host(), ring.port(),
                ringAdv != null ? ringAdv.host() : a != null ? a.host() : ring.host(), ringAdv != null ? ringAdv.port() : 0);
        CompletableFuture<Worker.ComputeEnded> ended = new CompletableFuture<>();
        // a worker may start before its coordinator, so it keeps trying to join, but not forever: Akka
        // shuts the node down once the seed has not answered for --join_timeout seconds
        String giveUp = seed != null && joinTimeout > 0
                ? "\nakka.cluster.shutdown-after-unsuccessful-join-seed-nodes = " + joinTimeout + "s\n" : "";
        ActorSystem<Worker.Command> system = Nodes.start(Worker.create(endpoint, new LocalPaths(data, model, out, resume), ended, compute),
                "worker", b, a, seed, keys, formation.config((a != null ? a : b).host()) + giveUp);
        formation.start(system);
        system.getWhenTerminated().toCompletableFuture().get(7, TimeUnit.DAYS);
        Worker.ComputeEnded end = ended.getNow(null);
        if (end == null && akka.actor.CoordinatedShutdown.get(system).getShutdownReason()
                .filter(r -> r.equals(akka.actor.CoordinatedShutdown.clusterJoinUnsuccessfulReason())).isPresent()) {
            System.err.println("error: worker: could not join the cluster at " + join + " within " + joinTimeout + " s (--join_timeout):"
                    + " is the coordinator running there, and do both nodes use the same cluster keys?");
            return 3;
        }
        if (end == null || !end.ok()) {
            System.err.println("error: worker: " + (end == null ? "removed from the cluster before the run ended (downed: unreachable for"
                    + " too long, or the cluster was stopped)" : end.message()));
            return 3;
        }
        return 0;
    }
}
