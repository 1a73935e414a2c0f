package dev.dreamcluster.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.dreamcluster.config.Json;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * torch.distributed's gloo backend as the ring's peer in {@code bench collective --peer}: N python3
 * processes (Debian's python3-torch, or {@code DREAMCLUSTER_PEER_PYTHON}) on loopback, one thread
 * each and {@code OMP_WAIT_POLICY=PASSIVE}, timing all_reduce and all_gather of the same buffer.
 *
 * @param why why the peer cannot run (null when it can)
 */
record GlooPeer(String python, Path script, String why) {
    static final String PYTHON = System.getenv().getOrDefault("DREAMCLUSTER_PEER_PYTHON", "/usr/bin/python3");

    boolean available() {
        return why == null;
    }

    /** Checks that python3 imports torch with gloo, and writes the rank script to a temporary file. */
    static GlooPeer probe() throws IOException, InterruptedException {
        if (!Files.isExecutable(Path.of(PYTHON))) {
            return new GlooPeer(PYTHON, null, PYTHON + " not found (apt-get install python3-torch)");
        }
        Process p = new ProcessBuilder(PYTHON, "-c", "import torch.distributed as d; print(d.is_gloo_available())")
                .redirectErrorStream(true).start();
        String said = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0 || !said.endsWith("True")) {
            return new GlooPeer(PYTHON, null, PYTHON + " cannot import torch.distributed with gloo (apt-get install python3-torch)");
        }
        Path script = Files.createTempFile("dreamcluster-gloo-peer", ".py");
        script.toFile().deleteOnExit();
        try (var in = GlooPeer.class.getResourceAsStream("gloo_peer.py")) {
            Files.write(script, in.readAllBytes());
        }
        return new GlooPeer(PYTHON, script, null);
    }

    /** One round: {all_reduce, all_gather} seconds per operation as rank 0 measured them. */
    double[] round(int world, int floats, int iters) throws IOException, InterruptedException {
        int port;
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            port = s.getLocalPort();
        }
        List<Process> ranks = new ArrayList<>();
        try {
            for (int r = 0; r < world; r++) {
                ProcessBuilder pb = new ProcessBuilder(python, script.toString(), Integer.toString(r), Integer.toString(world),
                        Integer.toString(port), Integer.toString(floats), Integer.toString(iters));
                pb.environment().put("OMP_WAIT_POLICY", "PASSIVE");
                pb.environment().put("OMP_NUM_THREADS", "1");
                pb.redirectErrorStream(true);
                if (r > 0) {
                    pb.redirectOutput(ProcessBuilder.Redirect.DISCARD);
                }
                ranks.add(pb.start());
            }
            String out = new String(ranks.get(0).getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            for (Process p : ranks) {
                if (!p.waitFor(300, TimeUnit.SECONDS) || p.exitValue() != 0) {
                    throw new IOException("a gloo peer rank failed: " + out.strip());
                }
            }
            String last = out.strip().lines().reduce((a, b) -> b).orElse("");
            JsonNode j = Json.MAPPER.readTree(last);
            return new double[] {j.path("all_reduce").asDouble(), j.path("all_gather").asDouble()};
        } finally {
            ranks.forEach(Process::destroyForcibly);
        }
    }
}
