package dev.dreamcluster.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.config.Json;
import dev.dreamcluster.config.TrainConfig;
import dev.dreamcluster.tokenizer.ClipTokenizer;
import dev.dreamcluster.worker.data.Batch;
import dev.dreamcluster.worker.data.ImageLoader;
import dev.dreamcluster.worker.train.data.DataCursor;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * The torch peer of {@code bench step --peer}: diffusers' UNet2DConditionModel and AutoencoderKL and
 * transformers' CLIPTextModel, imported from source trees at a release tag that the user names (nothing
 * of theirs ships here), on Debian's python3-torch ({@code DREAMCLUSTER_PEER_PYTHON} overrides
 * /usr/bin/python3), with torch.optim.AdamW, as 1 process or N (DistributedDataParallel over gloo on
 * loopback). The rank script is the resource {@code step_peer.py}. It trains the bench's own model folder
 * on the global batches DreamCluster's run takes, in the same order: {@link #writeInputs} replays
 * DreamCluster's data cursor for the run's train.json and writes each batch's decoded pixels and token ids.
 *
 * @param diffusers a diffusers source tree (its root or src folder)
 * @param transformers a transformers source tree
 * @param versions what the probe ran: torch, diffusers, transformers
 */
record StepPeer(String python, Path script, Path diffusers, Path transformers, String versions) {
    /** Where the source trees are looked for when --peer_sources is not given (a list like --peer_sources'). */
    static final String SOURCES_ENV = "DREAMCLUSTER_PEER_SOURCES";
    static final String HOW_TO_GET = "git clone -b v0.27.2 --depth 1 https://github.com/huggingface/diffusers"
            + " && git clone -b v4.38.2 --depth 1 https://github.com/huggingface/transformers";

    /** One peer run: medians over its timed steps, in seconds. */
    record Run(int world, int threads, double step, double compute, double optimizer) {}

    /** The decoded inputs of the peer: per global batch, how long DreamCluster's image loader took to decode it (seconds). */
    record Inputs(Path dir, double[] decodeSeconds) {}

    /** The source folders named by {@code flag} (null or empty: the environment's {@value #SOURCES_ENV}, split at ',' or ':'). */
    static List<Path> sources(List<Path> flag) {
        if (flag != null && !flag.isEmpty()) {
            return flag;
        }
        String env = System.getenv(SOURCES_ENV);
        if (env == null || env.isBlank()) {
            return List.of();
        }
        return Stream.of(env.split("[,:]")).filter(s -> !s.isBlank()).map(Path::of).toList();
    }

    /**
     * Why the peer cannot run, in one sentence with what to install or pass (null when it can): python3
     * with torch, numpy and gloo, and a diffusers and a transformers source tree among {@code sources}.
     */
    static String missing(List<Path> sources) throws IOException, InterruptedException {
        String python = GlooPeer.PYTHON;
        if (!Files.isExecutable(Path.of(python))) {
            return python + " not found (apt-get install python3-torch python3-numpy, or set DREAMCLUSTER_PEER_PYTHON)";
        }
        Process p = new ProcessBuilder(python, "-c", "import numpy, torch.distributed as d; print(d.is_gloo_available())")
                .redirectErrorStream(true).start();
        String said = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
        if (!p.waitFor(120, TimeUnit.SECONDS) || p.exitValue() != 0 || !said.endsWith("True")) {
            return python + " cannot import torch with gloo and numpy (apt-get install python3-torch python3-numpy)";
        }
        if (find(sources, "diffusers") == null || find(sources, "transformers") == null) {
            String where = sources.isEmpty() ? "neither --peer_sources nor " + SOURCES_ENV + " names them"
                    : (find(sources, "diffusers") == null ? "diffusers" : "transformers") + " not found in "
                    + String.join(", ", sources.stream().map(Path::toString).toList());
            return "needs diffusers and transformers source trees at v0.27.2 and v4.38.2 (" + where + "): " + HOW_TO_GET
                    + ", then --peer_sources diffusers,transformers or " + SOURCES_ENV + "=diffusers,transformers";
        }
        return null;
    }

    /**
     * The folder among {@code sources} (each folder itself, its src/, and its sub-folders named {@code
     * pkg*} and their src/) that holds {@code pkg/__init__.py}; null if none.
     */
    static Path find(List<Path> sources, String pkg) throws IOException {
        for (Path s : sources) {
            List<Path> candidates = new ArrayList<>(List.of(s, s.resolve("src")));
            if (Files.isDirectory(s)) {
                try (Stream<Path> children = Files.list(s)) {
                    children.filter(c -> c.getFileName().toString().startsWith(pkg) && Files.isDirectory(c)).sorted()
                            .forEach(c -> candidates.addAll(List.of(c, c.resolve("src"))));
                }
            }
            for (Path c : candidates) {
                if (Files.isRegularFile(c.resolve(pkg).resolve("__init__.py"))) {
                    return c;
                }
            }
        }
        return null;
    }

    /**
     * Checks everything the peer needs and imports the libraries once (their versions go into the
     * report); a {@link ConfigError} (one line, exit 2) says what is missing and how to get it.
     */
    static StepPeer probe(List<Path> flag) throws IOException, InterruptedException {
        List<Path> sources = sources(flag);
        String why = missing(sources);
        if (why != null) {
            throw new ConfigError("--peer: " + why);
        }
        Path script = Files.createTempFile("dreamcluster-step-peer", ".py");
        script.toFile().deleteOnExit();
        try (var in = Objects.requireNonNull(StepPeer.class.getResourceAsStream("step_peer.py"), "step_peer.py resource")) {
            Files.write(script, in.readAllBytes());
        }
        Path diffusers = find(sources, "diffusers");
        Path transformers = find(sources, "transformers");
        Process p = new ProcessBuilder(GlooPeer.PYTHON, script.toString(), "--diffusers", diffusers.toString(), "--transformers",
                transformers.toString(), "--probe").redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
        if (!p.waitFor(300, TimeUnit.SECONDS) || p.exitValue() != 0) {
            String last = out.lines().reduce((a, b) -> b).orElse("no output");
            throw new ConfigError("--peer: diffusers " + diffusers + " and transformers " + transformers + " do not import (" + last
                    + "); use the tags v0.27.2 and v4.38.2: " + HOW_TO_GET);
        }
        JsonNode v = Json.MAPPER.readTree(out.lines().reduce((a, b) -> b).orElse("{}"));
        String blas = v.path("blas").asText();
        String versions = "torch " + v.path("torch").asText() + ", diffusers " + v.path("diffusers").asText() + ", transformers "
                + v.path("transformers").asText() + ", BLAS " + blas + (blas.contains("/blas/libblas") ? " = Debian's reference libblas3,"
                + " far slower than the OpenBLAS Debian's libtorch recommends (apt-get install libopenblas0)" : "");
        return new StepPeer(GlooPeer.PYTHON, script, diffusers, transformers, versions);
    }

    /**
     * The first {@code batches} global batches of the run {@code trainJson} describes, as DreamCluster's
     * data cursor yields them (bucket sizes, caption dropout, flips, order): per batch its pixels (float32
     * NCHW in [-1, 1], DreamCluster's image loader) in {@code batch-K.f32} and its token ids (DreamCluster's
     * tokenizer, zero-padded to 77 as the training pads them) in {@code batches.json}, with the run's loss
     * type, noise offset, clipping and AdamW settings.
     */
    static Inputs writeInputs(Path dir, Path trainJson, int batches, double lr, double weightDecay) throws IOException {
        Files.createDirectories(dir);
        TrainConfig cfg = TrainConfig.load(trainJson, Map.of());
        DataCursor cursor = new DataCursor(cfg, w -> {});
        ClipTokenizer tokenizer = ClipTokenizer.load(cfg.model().resolve("tokenizer"));
        ObjectNode plan = Json.MAPPER.createObjectNode();
        plan.put("lr", lr);
        plan.put("weight_decay", weightDecay);
        if (cfg.clipGradNorm() == null) {
            plan.putNull("clip_grad_norm");
        } else {
            plan.put("clip_grad_norm", cfg.clipGradNorm());
        }
        plan.put("zero_frequency_noise_ratio", cfg.zeroFrequencyNoiseRatio());
        plan.put("loss_type", cfg.features().lossType().key());
        ArrayNode list = plan.putArray("batches");
        double[] decode = new double[batches];
        for (int k = 0; k < batches; k++) {
            Batch b = cursor.next();
            int n = b.items().size();
            int per = 3 * b.height() * b.width();
            float[] px = new float[n * per];
            long t0 = System.nanoTime();
            for (int i = 0; i < n; i++) {
                ImageLoader.load(b.items().get(i), b.width(), b.height(), px, i * per, b.flipped(i));
            }
            decode[k] = (System.nanoTime() - t0) / 1e9;
            ByteBuffer bytes = ByteBuffer.allocate(px.length * 4).order(ByteOrder.LITTLE_ENDIAN);
            bytes.asFloatBuffer().put(px);
            String file = "batch-" + k + ".f32";
            try (OutputStream o = Files.newOutputStream(dir.resolve(file))) {
                o.write(bytes.array());
            }
            ObjectNode e = list.addObject();
            e.put("file", file);
            e.put("count", n);
            e.put("width", b.width());
            e.put("height", b.height());
            ArrayNode ids = e.putArray("ids");
            for (String caption : b.captions()) {
                int[] enc = tokenizer.encode(caption).inputIds();
                ArrayNode row = ids.addArray();
                for (int j = 0; j < ClipTokenizer.MAX_LENGTH; j++) {
                    row.add(j < enc.length ? enc[j] : 0);
                }
            }
        }
        Files.writeString(dir.resolve("batches.json"), Json.MAPPER.writeValueAsString(plan));
        return new Inputs(dir, decode);
    }

    /**
     * One configuration: {@code world} rank processes of {@code threads} intra-op threads each (inter-op
     * 1, OMP_WAIT_POLICY=PASSIVE as DreamCluster's workers have), {@code warmup + steps} steps on the
     * model folder {@code model}; medians over the steps after the warm-up as rank 0 timed them.
     */
    Run run(Path model, Inputs inputs, Path logDir, int world, int threads, int steps, int warmup) throws IOException, InterruptedException {
        int port;
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            port = s.getLocalPort();
        }
        List<Process> ranks = new ArrayList<>();
        List<Path> logs = new ArrayList<>();
        try {
            for (int r = 0; r < world; r++) {
                ProcessBuilder pb = new ProcessBuilder(python, script.toString(), "--diffusers", diffusers.toString(), "--transformers",
                        transformers.toString(), "--model", model.toString(), "--inputs", inputs.dir().toString(), "--steps",
                        Integer.toString(warmup + steps), "--rank", Integer.toString(r), "--world", Integer.toString(world), "--port",
                        Integer.toString(port), "--threads", Integer.toString(threads));
                pb.environment().put("OMP_WAIT_POLICY", "PASSIVE");
                pb.environment().put("OMP_NUM_THREADS", Integer.toString(threads));
                pb.environment().put("MKL_NUM_THREADS", Integer.toString(threads));
                pb.environment().put("OPENBLAS_NUM_THREADS", Integer.toString(threads)); // torch 1.13 with a generic BLAS does not set it
                Path log = logDir.resolve("peer-" + world + "-rank" + r + "-" + System.nanoTime() + ".log");
                logs.add(log);
                pb.redirectErrorStream(true).redirectOutput(log.toFile());
                ranks.add(pb.start());
            }
            for (int r = 0; r < world; r++) {
                Process p = ranks.get(r);
                if (!p.waitFor(3600, TimeUnit.SECONDS) || p.exitValue() != 0) {
                    throw new IOException("bench step --peer: torch rank " + r + " of " + world + " failed:\n" + tail(logs.get(r)));
                }
            }
        } finally {
            ranks.forEach(Process::destroyForcibly);
        }
        List<double[]> rows = new ArrayList<>();
        for (String line : Files.readAllLines(logs.get(0))) {
            if (!line.startsWith("{\"step\"")) {
                continue;
            }
            JsonNode j = Json.MAPPER.readTree(line);
            if (j.path("step").asInt() > warmup) {
                rows.add(new double[] {j.path("step_s").asDouble(), j.path("compute_s").asDouble(), j.path("optimizer_s").asDouble()});
            }
        }
        if (rows.isEmpty()) {
            throw new IOException("bench step --peer: no timed torch steps:\n" + tail(logs.get(0)));
        }
        double[] med = new double[3];
        for (int k = 0; k < 3; k++) {
            final int c = k;
            med[k] = BenchCommand.CollectiveBench.median(rows.stream().mapToDouble(x -> x[c]).toArray());
        }
        return new Run(world, threads, med[0], med[1], med[2]);
    }

    private static String tail(Path log) throws IOException {
        List<String> lines = Files.exists(log) ? Files.readAllLines(log) : List.of("(no log)");
        return String.join("\n", lines.subList(Math.max(0, lines.size() - 30), lines.size()));
    }
}
