package dev.dreamcluster.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import akka.actor.typed.ActorSystem;
import akka.actor.typed.javadsl.Behaviors;
import akka.cluster.MemberStatus;
import akka.cluster.typed.Cluster;
import akka.cluster.typed.Join;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.stream.StreamSupport;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.LoggerFactory;

/**
 * Artery over mutual TLS, with ActorSystems in this JVM on loopback: a node whose certificate the
 * cluster CA signed joins; a node of another CA, and a node without TLS, never become members, and
 * the log says why. Also the {@code keys} command and the flags' refusals.
 */
class ClusterTlsTest {
    static ActorSystem<Void> seed(ClusterKeys.NodeKeys keys) {
        return Nodes.start(Behaviors.<Void>setup(ctx -> {
            Cluster c = Cluster.get(ctx.getSystem());
            c.manager().tell(Join.create(c.selfMember().address()));
            return Behaviors.empty();
        }), "coordinator", new Nodes.HostPort("127.0.0.1", 0), null, null, keys);
    }

    static ActorSystem<Void> joiner(String seedAddress, ClusterKeys.NodeKeys keys) {
        return Nodes.start(Behaviors.<Void>empty(), "worker", new Nodes.HostPort("127.0.0.1", 0), null, Nodes.hostPort(seedAddress, "seed"), keys);
    }

    static String hostPort(ActorSystem<?> s) {
        var a = Cluster.get(s).selfMember().address();
        return a.getHost().orElseThrow() + ":" + a.getPort().orElseThrow();
    }

    static boolean isMember(ActorSystem<?> of, ActorSystem<?> node) {
        var addr = Cluster.get(node).selfMember().address();
        return StreamSupport.stream(Cluster.get(of).state().getMembers().spliterator(), false)
                .anyMatch(m -> m.address().equals(addr) && m.status() == MemberStatus.up());
    }

    static void await(java.util.function.BooleanSupplier cond, Duration within) throws InterruptedException {
        long deadline = System.nanoTime() + within.toNanos();
        while (!cond.getAsBoolean() && System.nanoTime() < deadline) {
            Thread.sleep(100);
        }
    }

    @Test
    void onlyANodeWithACertificateOfTheClusterCaShouldJoin(@TempDir Path tmp) throws Exception {
        ClusterKeys.create(tmp.resolve("a"), Duration.ofDays(1));
        ClusterKeys.create(tmp.resolve("b"), Duration.ofDays(1));
        ClusterKeys.NodeKeys ours = ClusterKeys.load(tmp.resolve("a/node"), "--keys");
        ClusterKeys.NodeKeys foreign = ClusterKeys.load(tmp.resolve("b/node"), "--keys");
        Logger akka = (Logger) LoggerFactory.getLogger("akka");
        ListAppender<ILoggingEvent> log = new ListAppender<>();
        log.start();
        akka.addAppender(log);
        ActorSystem<Void> seed = seed(ours);
        ActorSystem<Void> member = null;
        ActorSystem<Void> intruder = null;
        ActorSystem<Void> plain = null;
        try {
            await(() -> Cluster.get(seed).selfMember().status() == MemberStatus.up(), Duration.ofSeconds(20));
            String at = hostPort(seed);
            member = joiner(at, ours);
            ActorSystem<Void> m = member;
            await(() -> isMember(seed, m), Duration.ofSeconds(30));
            assertTrue(isMember(seed, member), "a node with the cluster's keys joins");

            intruder = joiner(at, foreign);
            plain = joiner(at, null);
            Thread.sleep(10_000); // several join attempts (seed-node-timeout 5 s)
            for (ActorSystem<Void> outsider : List.of(intruder, plain)) {
                assertFalse(isMember(seed, outsider), "never a member: " + Cluster.get(outsider).selfMember());
                assertTrue(Cluster.get(outsider).state().getMembers().spliterator().estimateSize() == 0
                        || !isMember(outsider, seed), "the outsider never sees the cluster");
            }
            String why = log.list.stream().map(e -> e.getFormattedMessage() + " " + (e.getThrowableProxy() == null ? ""
                    : e.getThrowableProxy().getClassName() + ": " + e.getThrowableProxy().getMessage())).filter(s -> s.contains("SSL")
                    || s.contains("certificat") || s.contains("PKIX")).findFirst().orElse("");
            assertTrue(!why.isEmpty(), "the log names the TLS failure; it had:\n"
                    + String.join("\n", log.list.stream().map(ILoggingEvent::getFormattedMessage).toList()));
            System.out.println("refused join logged as: " + why);
        } finally {
            akka.detachAppender(log);
            for (ActorSystem<Void> s : new java.util.ArrayList<>(java.util.Arrays.asList(plain, intruder, member, seed))) {
                if (s != null) {
                    long t0 = System.nanoTime();
                    ClusterTrainingTest.stopNode(s);
                    System.out.printf("terminated %s in %.1f s%n", s.name(), (System.nanoTime() - t0) / 1e9);
                }
            }
        }
    }

    @Test
    void keysShouldMakeACaAndNodeKeysAndNeverOverwriteThem(@TempDir Path tmp) throws Exception {
        Path dir = tmp.resolve("k");
        long t0 = System.nanoTime();
        Cli r = Cli.run("keys", "--out", dir.toString());
        System.out.printf("keys --out: %.0f ms (CA + node keystore)%n", (System.nanoTime() - t0) / 1e6);
        assertEquals(0, r.status(), r.err());
        for (String f : List.of("ca/ca.p12", "ca/password", "node/node.p12", "node/truststore.p12", "node/password")) {
            assertTrue(Files.isRegularFile(dir.resolve(f)), f);
            assertEquals("rw-------", java.nio.file.attribute.PosixFilePermissions.toString(Files.getPosixFilePermissions(dir.resolve(f))), f);
        }
        ClusterKeys.load(dir.resolve("node"), "--keys"); // opens and verifies against the CA
        Cli.run("keys", "--out", dir.toString()).assertUsageError("--out", "already exists");
        Cli second = Cli.run("keys", "--ca", dir.resolve("ca").toString(), "--out", tmp.resolve("node2").toString());
        assertEquals(0, second.status(), second.err());
        ClusterKeys.load(tmp.resolve("node2"), "--keys");
    }

    @Test
    void nodesShouldRefuseToStartWithoutKeysOrWithBadKeys(@TempDir Path tmp) throws Exception {
        Cli.run("worker", "--join", "127.0.0.1:1").assertUsageError("--keys", "required", "--insecure");
        Cli.run("monitor", "--join", "127.0.0.1:1").assertUsageError("--keys", "required");
        Cli.run("worker", "--join", "127.0.0.1:1", "--keys", tmp.resolve("none").toString()).assertUsageError("--keys", "is not a folder");
        ClusterKeys.create(tmp.resolve("a"), Duration.ofDays(1));
        ClusterKeys.create(tmp.resolve("b"), Duration.ofDays(1));
        Files.writeString(tmp.resolve("a/node/password"), "wrong\n");
        Cli.run("worker", "--join", "127.0.0.1:1", "--keys", tmp.resolve("a/node").toString())
                .assertUsageError("--keys", "cannot open", "node.p12");
        Files.copy(tmp.resolve("b/node/password"), tmp.resolve("a/node/password"), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        Files.copy(tmp.resolve("b/node/node.p12"), tmp.resolve("a/node/node.p12"), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        Cli.run("worker", "--join", "127.0.0.1:1", "--keys", tmp.resolve("a/node").toString())
                .assertUsageError("--keys", "cannot open", "truststore.p12"); // a's truststore, b's password
        Cli.run("worker", "--join", "127.0.0.1:1", "--keys", tmp.resolve("b/node").toString(), "--insecure")
                .assertUsageError("--insecure", "cannot be combined");
    }
}
