package dev.dreamcluster.bench;

import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.concurrent.TimeUnit;

/**
 * Debian's python3-torch (1.13) running torch.optim.AdamW and lion-pytorch's update in a child
 * process that waits on stdin between commands, so its runs interleave with ours on the same cores
 * (an idle peer takes no CPU). {@link #start} returns null, with the reason in {@link #why}, when
 * python3 or torch is missing.
 */
final class TorchPeer implements AutoCloseable {
    static final String PYTHON = System.getenv().getOrDefault("DREAMCLUSTER_PEER_PYTHON", "/usr/bin/python3");
    static String why = "";

    private final Process process;
    private final BufferedReader out;
    private final BufferedWriter in;
    final String version;

    private TorchPeer(Process process, BufferedReader out, BufferedWriter in, String version) {
        this.process = process;
        this.out = out;
        this.in = in;
        this.version = version;
    }

    static TorchPeer start(int n) throws IOException {
        if (!Files.isExecutable(Path.of(PYTHON))) {
            why = PYTHON + " not found (set DREAMCLUSTER_PEER_PYTHON)";
            return null;
        }
        Path script = Files.createTempFile("optim_peer", ".py");
        script.toFile().deleteOnExit();
        try (InputStream s = TorchPeer.class.getResourceAsStream("optim_peer.py")) {
            Files.copy(s, script, StandardCopyOption.REPLACE_EXISTING);
        }
        ProcessBuilder pb = new ProcessBuilder(PYTHON, script.toString(), Integer.toString(n));
        // libtorch's OpenMP threads must sleep while ours run, or they spin on the cores we measure
        pb.environment().put("OMP_WAIT_POLICY", "PASSIVE");
        pb.redirectError(ProcessBuilder.Redirect.INHERIT);
        Process p = pb.start();
        BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
        String ready = out.readLine();
        if (ready == null || !ready.startsWith("ready ")) {
            p.destroy();
            why = "python3 could not import torch (apt-get install python3-torch)";
            return null;
        }
        return new TorchPeer(p, out, new BufferedWriter(new OutputStreamWriter(p.getOutputStream(), StandardCharsets.UTF_8)),
                ready.substring("ready ".length()));
    }

    /** Seconds per step of {@code optimizer} (adamw or lion) at {@code threads} intra-op threads. */
    double secondsPerStep(String optimizer, int threads, int steps) throws IOException {
        in.write(optimizer + " " + threads + " " + steps + "\n");
        in.flush();
        String line = out.readLine();
        if (line == null || line.startsWith("error")) {
            throw new IOException("torch peer failed: " + line);
        }
        return Double.parseDouble(line.trim());
    }

    @Override
    public void close() throws IOException {
        in.close();
        try {
            if (!process.waitFor(10, TimeUnit.SECONDS)) {
                process.destroyForcibly();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            process.destroyForcibly();
        }
    }
}
