package dev.dreamcluster.worker.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dreamcluster.config.CliFlags;
import dev.dreamcluster.config.ConfigResolver;
import dev.dreamcluster.config.TrainConfig;
import dev.dreamcluster.freeze.Component;
import dev.dreamcluster.model.DiffusersFolder;
import dev.dreamcluster.safetensors.DType;
import dev.dreamcluster.safetensors.SafetensorsFile;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Checkpoints on nodes that share no file system: each rank has its own out folder; rank 0's holds
 * the whole checkpoint (optimizer shards gathered over the ring, AdamW8bit so 8-bit codes travel),
 * rank 1's holds nothing; a copy of it resumes on 2 workers bit for bit and on 1 process within the
 * 2-vs-1 bound of {@link MultiProcessTrainingTest}.
 */
class CheckpointWithoutSharedFsTest {
    @Test
    void rankZeroAloneShouldHoldACheckpointThatResumesOnAnyWorkerCount(@TempDir Path tmp) throws Exception {
        Path trainJson = MultiProcessTrainingTest.setup(tmp, "adamw8bit");
        // 4 steps on 2 workers with a checkpoint at 2 and 4, each rank in its own folder
        assertEquals(0, run(trainJson, tmp.resolve("straight-{rank}"), 4, 2, null, 31));
        Path ckpt = tmp.resolve("straight-0").resolve("checkpoints").resolve("step-000002");
        assertTrue(Files.isRegularFile(ckpt.resolve("trainer_state.json")));
        assertTrue(Files.isRegularFile(ckpt.resolve("optimizer/unet/optimizer_state.json")), "one consolidated unet state");
        assertTrue(Files.isRegularFile(ckpt.resolve("optimizer/text_encoder/optimizer_state.json")));
        assertFalse(Files.exists(ckpt.resolve("optimizer/unet/rank-1")), "no per-rank shards");
        assertFalse(Files.exists(tmp.resolve("straight-1").resolve("checkpoints")), "rank 1 wrote no checkpoint");
        assertFalse(Files.exists(tmp.resolve("straight-1").resolve("final")), "rank 1 wrote no model");
        try (var leftovers = Files.list(ckpt.getParent())) {
            assertEquals(List.of("step-000002", "step-000004"), leftovers.map(p -> p.getFileName().toString()).sorted().toList());
        }

        // another "node": a copy of the folder, resumed on 2 workers for the remaining 2 steps
        Path copy = tmp.resolve("copied-step-2");
        copyTree(ckpt, copy);
        assertEquals(0, run(trainJson, tmp.resolve("resumed-{rank}"), 2, 0, copy, 32));
        Path straight = tmp.resolve("straight-0").resolve("final");
        for (Component c : new Component[] {Component.UNET, Component.TEXT_ENCODER}) {
            SafetensorsFile a = SafetensorsFile.open(DiffusersFolder.weightsFile(straight, c));
            SafetensorsFile b = SafetensorsFile.open(DiffusersFolder.weightsFile(tmp.resolve("resumed-0").resolve("final"), c));
            for (String name : a.tensors().keySet()) {
                assertArrayEquals(a.readFloats(name), b.readFloats(name), "2-worker resume " + c.folder() + "/" + name);
            }
        }

        // and on one process (the 2-rank shards re-sharded to one)
        var cfg = TrainConfig.load(trainJson, Map.of("max_steps", 4, "out", tmp.resolve("one").toString()));
        var opt = ConfigResolver.load(trainJson, CliFlags.NONE, 4);
        try (Trainer t = new Trainer(cfg, opt, copy, w -> { })) {
            assertEquals(2, t.step());
            t.trainStep();
            t.trainStep();
            t.saveModel(tmp.resolve("one").resolve("final"), DType.F32);
        }
        double worst = 0;
        for (Component c : new Component[] {Component.UNET, Component.TEXT_ENCODER}) {
            SafetensorsFile a = SafetensorsFile.open(DiffusersFolder.weightsFile(straight, c));
            SafetensorsFile b = SafetensorsFile.open(DiffusersFolder.weightsFile(tmp.resolve("one").resolve("final"), c));
            for (String name : a.tensors().keySet()) {
                float[] x = a.readFloats(name);
                float[] y = b.readFloats(name);
                for (int i = 0; i < x.length; i++) {
                    worst = Math.max(worst, Math.abs(x[i] - y[i]) / Math.max(1, Math.abs(x[i])));
                }
            }
        }
        System.out.println("1-process resume of a 2-worker checkpoint vs 2 workers: worst relative difference " + worst);
        assertTrue(worst <= 2e-5 + 1e-3, "worst " + worst);
    }

    /** {@code world} = 2 RingTrainMain ranks; returns the first non-zero exit status, or 0. */
    private static int run(Path trainJson, Path out, int steps, int saveEvery, Path resume, long runId) throws Exception {
        List<String> peers = new ArrayList<>();
        for (int r = 0; r < 2; r++) {
            try (ServerSocketChannel s = ServerSocketChannel.open().bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0))) {
                InetSocketAddress a = (InetSocketAddress) s.getLocalAddress();
                peers.add(a.getHostString() + ":" + a.getPort());
            }
        }
        List<Process> ps = new ArrayList<>();
        List<Path> logs = new ArrayList<>();
        String secret = dev.dreamcluster.collective.RingCollective.newSecret();
        try {
            for (int r = 0; r < 2; r++) {
                List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                        "-Dai.djl.offline=true", "-Dai.djl.pytorch.num_threads=1",
                        "-cp", System.getProperty("java.class.path"), RingTrainMain.class.getName(), trainJson.toString(),
                        Integer.toString(r), String.join(",", peers), Integer.toString(steps), out.toString(), Long.toString(runId),
                        Integer.toString(saveEvery)));
                if (resume != null) {
                    cmd.add(resume.toString());
                }
                Path log = out.resolveSibling(out.getFileName().toString().replace("{rank}", Integer.toString(r)) + ".log");
                logs.add(log);
                ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
                pb.environment().put(RingTrainMain.SECRET_ENV, secret);
                ps.add(pb.start());
            }
            int code = 0;
            for (Process p : ps) {
                if (!p.waitFor(300, TimeUnit.SECONDS)) {
                    code = 124;
                } else if (p.exitValue() != 0 && code == 0) {
                    code = p.exitValue();
                }
            }
            if (code != 0) {
                for (Path log : logs) {
                    System.err.println(Files.readString(log));
                }
            }
            return code;
        } finally {
            ps.forEach(Process::destroyForcibly);
        }
    }

    private static void copyTree(Path from, Path to) throws Exception {
        try (var all = Files.walk(from)) {
            for (Path p : all.toList()) {
                Path dst = to.resolve(from.relativize(p).toString());
                if (Files.isDirectory(p)) {
                    Files.createDirectories(dst);
                } else {
                    Files.copy(p, dst);
                }
            }
        }
    }
}
