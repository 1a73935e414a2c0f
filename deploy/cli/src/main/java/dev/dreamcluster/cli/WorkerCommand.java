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

    @Option(names = "--heartbeat_pause", paramLabel = "S", defaultValue = "8",
            description = "seconds of heartbeat silence before a node counts as unreachable (default 8; every node of a cluster"
                    + " should use the same; the embedded train raises it when its workers outnumber the cores)")
    int heartbeatPause;

    @Option(names = "--preemption_grace", paramLabel = "S", defaultValue = "25",
            description = "on SIGTERM, seconds this node stays up while the run commits a checkpoint after the step in flight"
                    + " and goes on without it (default 25; 0: exit at once, the run restarts from its last checkpoint)")
    int preemptionGrace;

    @picocli.CommandLine.Mixin
    DeviceOptions device = new DeviceOptions();

    @picocli.CommandLine.Mixin
    ClusterKeyFlags cluster;

    /** A spot notice gives 30 s to 2 min; a bound beyond an hour would only hide a hung node. */
    static final int MAX_GRACE = 3600;

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
        if (preemptionGrace < 0 || preemptionGrace > MAX_GRACE) {
            throw ConfigError.invalid("--preemption_grace", Integer.toString(preemptionGrace), "0 (exit at once) or 1.."
                    + MAX_GRACE + " seconds");
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
                "worker", b, a, seed, keys, formation.config((a != null ? a : b).host()) + giveUp + graceConfig(preemptionGrace)
                        + Nodes.heartbeatConfig(heartbeatPause, "--heartbeat_pause"));
        CompletableFuture<Boolean> stopped = Nodes.stopped(system);
        leaveWithCheckpointOnSigterm(system, ended, preemptionGrace);
        formation.start(system);
        if (!stopped.get(7, TimeUnit.DAYS)) {
            System.err.println("warning: worker: Akka's remoting had not stopped " + Nodes.STOP_GRACE.toSeconds()
                    + " s after the node's last shutdown phase began; exiting without it");
        }
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

    /**
     * The first phase of Akka's coordinated shutdown gets the grace (plus time for the step in flight
     * to be reported): Akka's own JVM shutdown hook runs the phases in order and waits for them, so the
     * node stays a cluster member, with its ring open, until the task below is done or the phase times out.
     */
    static String graceConfig(int graceSeconds) {
        return graceSeconds == 0 ? "" : "\nakka.coordinated-shutdown.phases.before-service-unbind.timeout = " + (graceSeconds + 5) + "s\n";
    }

    /**
     * SIGTERM (a spot notice, kubectl delete pod, a scale-down) runs Akka's coordinated shutdown from its
     * JVM hook; its first phase asks the worker actor to leave the run at the next step boundary with a
     * committed checkpoint ({@link Worker.Leave}) and waits, at most {@code graceSeconds}, before the
     * node leaves the cluster. Past the bound the node goes as before, and the run restarts from its last
     * checkpoint. A shutdown for any other reason (the run ended, the coordinator was lost) goes at once.
     * A second SIGTERM changes nothing: the JVM runs its hooks once (and a checkpoint is written under a
     * temporary name and renamed, so even a SIGKILL never leaves a half one under its real name).
     */
    static void leaveWithCheckpointOnSigterm(ActorSystem<Worker.Command> system, CompletableFuture<Worker.ComputeEnded> ended,
            int graceSeconds) {
        akka.actor.CoordinatedShutdown cs = akka.actor.CoordinatedShutdown.get(system);
        cs.addTask(akka.actor.CoordinatedShutdown.PhaseBeforeServiceUnbind(), "leave-run-with-checkpoint", () -> {
            boolean sigterm = cs.getShutdownReason().filter(r -> r.equals(akka.actor.CoordinatedShutdown.jvmExitReason())).isPresent();
            if (!sigterm || graceSeconds == 0 || ended.isDone()) {
                return CompletableFuture.completedFuture(akka.Done.getInstance());
            }
            System.err.println("worker: SIGTERM: leaving the run after the step in flight, once its checkpoint is committed"
                    + " (at most " + graceSeconds + " s, --preemption_grace)");
            CompletableFuture<Void> left = new CompletableFuture<>();
            system.tell(new Worker.Leave("SIGTERM", left));
            return CompletableFuture.anyOf(left, ended).completeOnTimeout(null, graceSeconds, TimeUnit.SECONDS)
                    .thenApply(v -> {
                        System.err.println(left.isDone() ? "worker: left the run; its checkpoint is committed"
                                : "worker: --preemption_grace " + graceSeconds + " s passed before a checkpoint was committed; leaving");
                        return akka.Done.getInstance();
                    });
        });
    }
}
