package dev.dreamcluster.cli;

import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.config.Json;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * DeepSpeed's hostfile: one host per line, {@code HOST slots=N} (N workers, one per GPU), with
 * {@code #} comments and blank lines. Hosts keep their file order; ranks follow from the cluster.
 */
record Hostfile(List<Hostfile.Host> hosts) {
    record Host(String name, int slots) {}

    Hostfile {
        hosts = List.copyOf(hosts);
    }

    int totalSlots() {
        return hosts.stream().mapToInt(Host::slots).sum();
    }

    static Hostfile read(Path file) {
        List<String> lines;
        try {
            lines = Files.readAllLines(file);
        } catch (IOException e) {
            throw new ConfigError("--hostfile: " + Json.quote(file.toString()) + " cannot be read (" + e.getMessage() + ")");
        }
        return parse(lines, file.toString());
    }

    static Hostfile parse(List<String> lines, String source) {
        List<Host> hosts = new ArrayList<>();
        Set<String> seen = new LinkedHashSet<>();
        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i);
            int hash = line.indexOf('#');
            String text = (hash >= 0 ? line.substring(0, hash) : line).strip();
            if (text.isEmpty()) {
                continue;
            }
            String where = source + " line " + (i + 1);
            String[] parts = text.split("\\s+");
            if (parts.length != 2 || !parts[1].startsWith("slots=")) {
                throw new ConfigError(where + ": " + Json.quote(text) + " is not allowed (HOST slots=N, e.g. worker-1 slots=8)");
            }
            int slots;
            try {
                slots = Integer.parseInt(parts[1].substring("slots=".length()));
            } catch (NumberFormatException e) {
                slots = 0;
            }
            if (slots < 1) {
                throw new ConfigError(where + ": " + Json.quote(parts[1]) + " is not allowed (slots=N with N a whole number >= 1)");
            }
            if (!seen.add(parts[0])) {
                throw new ConfigError(where + ": host " + Json.quote(parts[0]) + " is listed twice (give it one line with all its slots)");
            }
            hosts.add(new Host(parts[0], slots));
        }
        if (hosts.isEmpty()) {
            throw new ConfigError(source + ": no hosts (one line per host: HOST slots=N)");
        }
        return new Hostfile(hosts);
    }

    /** Names that mean this machine: its workers start as local processes, without ssh. */
    static boolean isLocal(String host) {
        return host.equals("localhost") || host.startsWith("127.") || host.equals("::1");
    }
}
