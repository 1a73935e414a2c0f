package dev.dreamcluster.cli;

import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code --http}: a bad value or a port in use is one error line and exit 2, before any worker starts. */
class MonitoringFlagsTest {
    @Test
    void aMalformedHttpAddressShouldBeAUsageError(@TempDir Path tmp) throws Exception {
        Cli.run("train", "--config", ClusterTrainingTest.example(tmp).toString(), "--workers", "2", "--max_steps", "1",
                "--http", "localhost").assertUsageError("--http", "\"localhost\"", "HOST:PORT");
        Cli.run("coordinator", "--config", tmp.resolve("train.json").toString(), "--bind", "127.0.0.1:0", "--http", "127.0.0.1:70000",
                "--insecure")
                .assertUsageError("--http", "0..65535");
    }

    @Test
    void aPortInUseShouldBeAUsageErrorNamingTheFlag(@TempDir Path tmp) throws Exception {
        try (ServerSocket taken = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            String http = "127.0.0.1:" + taken.getLocalPort();
            Cli.run("train", "--config", ClusterTrainingTest.example(tmp).toString(), "--workers", "2", "--max_steps", "1",
                    "--http", http).assertUsageError("--http: cannot listen on " + http);
        }
    }
}
