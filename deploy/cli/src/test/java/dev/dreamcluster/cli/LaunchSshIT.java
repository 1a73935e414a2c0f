package dev.dreamcluster.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.dreamcluster.worker.fixture.TinyRun;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code launch} over real ssh: the launcher in one network namespace (10.214.0.1), an sshd in
 * another (10.214.0.2, key authentication, its own config and host key in the test folder); the
 * hostfile names 10.214.0.2 with 2 slots, so both workers start through sshd and train the tiny model
 * 2 steps. Skips, naming what is missing, without ip netns or sshd/ssh/ssh-keygen. The
 * namespaces (and with them sshd's sockets) and every process are removed afterwards.
 */
class LaunchSshIT {
    private final String tag = "ds" + (ProcessHandle.current().pid() % 100000);
    private final List<String> namespaces = new ArrayList<>();
    private final List<Process> processes = new ArrayList<>();

    @Test
    void launchShouldStartTheHostfilesWorkersOverSshAndTrain(@TempDir Path tmp) throws Exception {
        try {
            assumeTrue(sh(tmp, "ip", "netns", "add", tag + "-a") == 0, "ip netns does not work here (iproute2, root)");
            namespaces.add(tag + "-a");
            assumeTrue(Files.isExecutable(Path.of("/usr/sbin/sshd")) && sh(tmp, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                    tmp.resolve("id").toString()) == 0, "no sshd or ssh-keygen (Debian: openssh-server, openssh-client)");
            check(tmp, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", tmp.resolve("hostkey").toString());
            Files.copy(tmp.resolve("id.pub"), tmp.resolve("authorized_keys"));
            check(tmp, "ip", "netns", "add", tag + "-b");
            namespaces.add(tag + "-b");
            check(tmp, "ip", "-n", tag + "-a", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", tag + "-b");
            for (int i = 0; i < 2; i++) {
                String ns = tag + (i == 0 ? "-a" : "-b");
                check(tmp, "ip", "-n", ns, "addr", "add", "10.214.0." + (i + 1) + "/24", "dev", "eth0");
                check(tmp, "ip", "-n", ns, "link", "set", "eth0", "up");
                check(tmp, "ip", "-n", ns, "link", "set", "lo", "up");
            }
            Files.writeString(tmp.resolve("sshd_config"), "ListenAddress 10.214.0.2\nPort 22\nHostKey " + tmp.resolve("hostkey")
                    + "\nAuthorizedKeysFile " + tmp.resolve("authorized_keys") + "\nPermitRootLogin prohibit-password\nStrictModes no\n"
                    + "UsePAM no\nPidFile " + tmp.resolve("sshd.pid") + "\n");
            Files.createDirectories(Path.of("/run/sshd")); // sshd's privilege separation folder
            processes.add(new ProcessBuilder("ip", "netns", "exec", tag + "-b", "/usr/sbin/sshd", "-D", "-e", "-f",
                    tmp.resolve("sshd_config").toString()).redirectErrorStream(true).redirectOutput(tmp.resolve("sshd.log").toFile()).start());

            Path trainJson = TinyRun.write(tmp.resolve("run"), TinyRun.optimizer("adamw"), 8, "");
            Path bin = Files.createDirectories(tmp.resolve("dist").resolve("bin"));
            Files.writeString(bin.resolve("dreamcluster"), "#!/bin/sh\nexec '" + Path.of(System.getProperty("java.home"), "bin", "java")
                    + "' -Dai.djl.offline=true -Dai.djl.pytorch.num_threads=1 -cp '"
                    + System.getProperty("java.class.path") + "' " + Main.class.getName() + " \"$@\"\n");
            Files.setPosixFilePermissions(bin.resolve("dreamcluster"), PosixFilePermissions.fromString("rwxr-xr-x"));
            Path hosts = Files.writeString(tmp.resolve("hosts"), "10.214.0.2 slots=2\n");
            String ssh = "ssh -i " + tmp.resolve("id") + " -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR";
            Process launch = new ProcessBuilder("ip", "netns", "exec", tag + "-a", bin.resolve("dreamcluster").toString(), "launch",
                    "--hostfile", hosts.toString(), "--config", trainJson.toString(), "--bind", "10.214.0.1:25520", "--max_steps", "2",
                    "--remote_dir", tmp.resolve("dist").toString(), "--ssh", ssh, "--keys", TestKeys.node(tmp))
                    .redirectErrorStream(true).redirectOutput(tmp.resolve("launch.log").toFile()).start();
            processes.add(launch);
            boolean done = launch.waitFor(400, TimeUnit.SECONDS);
            String log = Files.readString(tmp.resolve("launch.log"));
            assertTrue(done, "launch timed out:\n" + log);
            assertEquals(0, launch.exitValue(), log + Files.readString(tmp.resolve("run/launch-logs/worker-0.log")));
            try (var all = Files.walk(tmp.resolve("run"))) {
                assertTrue(all.anyMatch(p -> p.endsWith(Path.of("final", "model_index.json"))), "a final/ model: " + log);
            }
            assertTrue(log.contains("started on 2 workers") && log.contains("run finished: finished"), log);
            assertTrue(log.contains("@10.214.0.2:"), "the workers joined from the sshd's namespace: " + log);
        } finally {
            processes.forEach(Process::destroyForcibly);
            for (Process p : processes) {
                p.waitFor(10, TimeUnit.SECONDS);
            }
            for (String ns : namespaces) {
                sh(tmp, "ip", "netns", "del", ns);
            }
        }
    }

    private static void check(Path tmp, String... cmd) throws Exception {
        assertEquals(0, sh(tmp, cmd), String.join(" ", cmd) + ": " + Files.readString(tmp.resolve("cmd.log")));
    }

    private static int sh(Path tmp, String... cmd) throws Exception {
        Process p;
        try {
            p = new ProcessBuilder(cmd).redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.appendTo(tmp.resolve("cmd.log").toFile())).start();
        } catch (java.io.IOException e) {
            return -1;
        }
        if (!p.waitFor(30, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            return 124;
        }
        return p.exitValue();
    }
}
