package dev.dreamcluster.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import akka.actor.typed.ActorSystem;
import akka.actor.typed.javadsl.Behaviors;
import akka.cluster.MemberStatus;
import akka.cluster.typed.Cluster;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.StreamSupport;
import org.junit.jupiter.api.Test;

/**
 * Cluster Bootstrap (Akka Management 1.1.4) forms a cluster of a coordinator and two workers with
 * config discovery and no seed node, through the same {@link ClusterFormation} the commands use;
 * every node's /ready and /alive answer 200 once it is Up. The coordinator also runs the monitoring
 * server, bound before bootstrap starts as the coordinate command does (the two once clashed over
 * Cluster Bootstrap's route provider, which may be prepared only once). Loopback only.
 */
class ClusterBootstrapTest {
    @Test
    void threeNodesShouldFormOneClusterWithoutSeedNodes(@org.junit.jupiter.api.io.TempDir java.nio.file.Path out) throws Exception {
        List<Integer> mgmt = List.of(freePort(), freePort(), freePort());
        List<String> points = mgmt.stream().map(p -> "127.0.0.1:" + p).toList();
        List<ActorSystem<Void>> nodes = new ArrayList<>();
        String monitoringUrl = null;
        try {
            String[] roles = {"coordinator", "worker", "worker"};
            for (int i = 0; i < 3; i++) {
                ClusterFormation f = new ClusterFormation();
                f.discovery = "config";
                f.contactPoints = points;
                f.service = "dreamcluster";
                f.management = points.get(i);
                ActorSystem<Void> s = Nodes.start(Behaviors.empty(), roles[i], new Nodes.HostPort("127.0.0.1", 0), null, null, null,
                        f.config("127.0.0.1"));
                nodes.add(s);
                if (i == 0) {
                    URI monitoring = dev.dreamcluster.monitoring.MonitoringServer.start(s,
                            new dev.dreamcluster.monitoring.MonitoringSettings("127.0.0.1", 0, out)).toCompletableFuture().get();
                    monitoringUrl = monitoring.toString();
                }
                f.start(s);
            }
            long deadline = System.nanoTime() + 60_000_000_000L;
            while (System.nanoTime() < deadline && !nodes.stream().allMatch(ClusterBootstrapTest::seesThreeUp)) {
                Thread.sleep(200);
            }
            for (ActorSystem<Void> s : nodes) {
                assertTrue(seesThreeUp(s), s.address() + " sees " + Cluster.get(s).state().getMembers());
            }
            HttpClient http = HttpClient.newHttpClient();
            List<String> servers = new ArrayList<>(points);
            servers.add(monitoringUrl.substring("http://".length(), monitoringUrl.length() - 1));
            for (String p : servers) {
                for (String path : new String[] {"/ready", "/alive"}) {
                    int code = 0;
                    for (int tries = 0; tries < 50 && code != 200; tries++) { // readiness follows membership by a tick
                        code = http.send(HttpRequest.newBuilder(URI.create("http://" + p + path)).build(),
                                HttpResponse.BodyHandlers.discarding()).statusCode();
                        if (code != 200) {
                            Thread.sleep(200);
                        }
                    }
                    assertEquals(200, code, p + path);
                }
            }
        } finally {
            for (ActorSystem<Void> s : nodes) {
                ClusterTrainingTest.stopNode(s);
            }
        }
    }

    private static boolean seesThreeUp(ActorSystem<Void> s) {
        return StreamSupport.stream(Cluster.get(s).state().getMembers().spliterator(), false)
                .filter(m -> m.status() == MemberStatus.up()).count() == 3;
    }

    private static int freePort() throws Exception {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }
}
