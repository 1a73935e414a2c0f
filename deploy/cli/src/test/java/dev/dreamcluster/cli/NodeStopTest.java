package dev.dreamcluster.cli;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import akka.actor.typed.ActorSystem;
import akka.actor.typed.PostStop;
import akka.actor.typed.javadsl.Behaviors;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * A command waiting for its node to stop is bounded after the last shutdown phases begin
 * ({@link Nodes#stopped}): a node that terminates reports true; one whose termination stalls (here an
 * actor that blocks for 8 s while it stops, standing in for Akka 2.6's unbounded wait on its remoting
 * streams) reports false once the grace has passed, long before the stall ends.
 */
class NodeStopTest {
    @Test
    void aNodeThatTerminatesShouldReportTrue() throws Exception {
        ActorSystem<Void> node = Nodes.start(Behaviors.empty(), "monitor", new Nodes.HostPort("127.0.0.1", 0), null, null, null);
        long t0 = System.nanoTime();
        assertTrue(Nodes.stop(node), "terminated");
        assertTrue(node.getWhenTerminated().toCompletableFuture().isDone());
        System.out.printf("a lone node stopped in %.2f s%n", (System.nanoTime() - t0) / 1e9);
    }

    @Test
    void aNodeWhoseTerminationStallsShouldReportFalseAfterTheGrace() throws Exception {
        long stallMillis = 5000;
        ActorSystem<Void> node = Nodes.start(Behaviors.<Void>setup(ctx -> {
            ctx.spawn(Behaviors.receive(Object.class).onSignal(PostStop.class, s -> {
                Thread.sleep(stallMillis); // blocks its dispatcher thread, so the guardian (and the system) cannot finish stopping
                return Behaviors.same();
            }).build(), "stalls-when-stopped");
            return Behaviors.empty();
        }), "monitor", new Nodes.HostPort("127.0.0.1", 0), null, null, null);
        CompletableFuture<Boolean> stopped = Nodes.stopped(node, Duration.ofSeconds(1));
        long t0 = System.nanoTime();
        node.terminate();
        assertFalse(stopped.get(60, TimeUnit.SECONDS), "reported as not terminated");
        double waited = (System.nanoTime() - t0) / 1e9;
        assertFalse(node.getWhenTerminated().toCompletableFuture().isDone(), "still stopping when the grace ran out");
        assertTrue(waited < stallMillis / 1000.0, "the wait ended before the stall did: " + waited + " s");
        node.getWhenTerminated().toCompletableFuture().get(60, TimeUnit.SECONDS); // the stall ends; the JVM keeps nothing behind
        System.out.printf("stalled node: reported after %.2f s, terminated after %.2f s%n", waited, (System.nanoTime() - t0) / 1e9);
    }
}
