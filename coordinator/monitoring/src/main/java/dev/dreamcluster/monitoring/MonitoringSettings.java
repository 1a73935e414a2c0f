package dev.dreamcluster.monitoring;

import java.nio.file.Path;

/**
 * Where the monitoring HTTP server listens ({@code --http HOST:PORT}; port 0 takes any free port) and
 * the run's output folder it reads metrics.jsonl, checkpoints and samples from.
 */
public record MonitoringSettings(String host, int port, Path out) {
    public MonitoringSettings {
        if (port < 0 || port > 65535) {
            throw new IllegalArgumentException("port must be in 0..65535, got " + port);
        }
    }
}
