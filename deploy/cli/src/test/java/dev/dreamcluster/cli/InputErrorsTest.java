package dev.dreamcluster.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dreamcluster.config.Json;
import dev.dreamcluster.io.AtomicFiles;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Every bad input from the user's files or flags that used to end in a stack trace: through the
 * CLI's Main, each must give exit 2, exactly one {@code error:} line naming the file or flag and
 * the bad value, nothing on stdout and no run files (train_config.json, metrics.jsonl) in out.
 */
class InputErrorsTest {
    @TempDir
    static Path base;
    static TinyInputs inputs;
    /** A one-step checkpoint of the base config. */
    static Path checkpoint;

    @BeforeAll
    static void makeInputs() throws Exception {
        inputs = TinyInputs.make(base, "adamw8bit");
        Cli r = Cli.run("train", "--config", trainJson(base.resolve("t0.json"), n -> { }).toString(), "--out", base.resolve("run0").toString());
        assertEquals(0, r.status(), r.err());
        checkpoint = base.resolve("run0").resolve("checkpoints").resolve("step-000001");
        assertTrue(Files.isRegularFile(checkpoint.resolve("trainer_state.json")));
    }

    static Path trainJson(Path file, Consumer<ObjectNode> edit) throws IOException {
        return inputs.trainJson(file, edit);
    }

    static Path raw(Path dir, String name, String json) throws IOException {
        Files.createDirectories(dir);
        Path f = dir.resolve(name);
        Files.writeString(f, json);
        return f;
    }

    /** Runs train with {@code cfg} into a new out folder and checks the error and that nothing was written. */
    static void refused(Path tmp, Path cfg, List<String> extra, String... fragments) {
        Path out = tmp.resolve("out");
        List<String> args = new ArrayList<>(List.of("train", "--config", cfg.toString(), "--out", out.toString()));
        args.addAll(extra);
        Cli.run(args.toArray(String[]::new)).assertUsageError(fragments);
        assertFalse(Files.exists(out.resolve("train_config.json")), "train_config.json of a run that never started");
        assertFalse(Files.exists(out.resolve("metrics.jsonl")), "metrics.jsonl of a run that never started");
        assertFalse(Files.exists(out.resolve(dev.dreamcluster.io.OutputLock.FILE)), "lock released");
    }

    // ---- numbers that do not fit their type, ranges naming their file ----

    @Test
    void shouldRefuseNumbersThatDoNotFit(@TempDir Path tmp) throws Exception {
        String base = "{\"data_root\": \"d\", \"resume_ckpt\": \"m\", ";
        Path f = raw(tmp, "a.json", base + "\"batch_size\": 4294967298}");
        Cli.run("train", "--config", f.toString()).assertUsageError(f.toString(), "batch_size", "4294967298", ">= 1");
        f = raw(tmp, "b.json", base + "\"batch_size\": 1e400}");
        Cli.run("train", "--config", f.toString()).assertUsageError(f.toString(), "batch_size", "whole number");
        f = raw(tmp, "c.json", base + "\"max_steps\": 1e400}");
        Cli.run("train", "--config", f.toString()).assertUsageError(f.toString(), "max_steps", "whole number");
        f = raw(tmp, "d.json", base + "\"resolution\": 100}");
        Cli.run("train", "--config", f.toString()).assertUsageError(f.toString(), "resolution", "100", "multiple of 64");
        f = raw(tmp, "e.json", base + "\"max_epochs\": 0}");
        Cli.run("train", "--config", f.toString()).assertUsageError(f.toString(), "max_epochs", "0", ">= 1");
        f = raw(tmp, "g.json", base + "\"seed\": 1.5}");
        Cli.run("train", "--config", f.toString()).assertUsageError(f.toString(), "seed", "1.5");
        f = raw(tmp, "h.json", base + "\"keep_last_n_checkpoints\": 0}");
        Cli.run("train", "--config", f.toString()).assertUsageError(f.toString(), "keep_last_n_checkpoints", "0");
        f = raw(tmp, "i.json", base + "\"clip_skip\": 9}");
        Cli.run("train", "--config", f.toString()).assertUsageError(f.toString(), "clip_skip", "9", "<= 4");
        Path ok = trainJson(tmp.resolve("ok.json"), n -> { });
        refused(tmp, ok, List.of("--keep_last_n_checkpoints", "-1"), "--keep_last_n_checkpoints", "-1");
        refused(tmp, ok, List.of("--overwrite", "--resume", checkpoint.toString()), "--overwrite", "--resume");
    }

    // ---- the output folder ----

    @Test
    void shouldRefuseAnOutThatIsAFileOrReadOnly(@TempDir Path tmp) throws Exception {
        Path cfg = trainJson(tmp.resolve("t.json"), n -> { });
        Path file = Files.writeString(tmp.resolve("a-file"), "x");
        Cli.run("train", "--config", cfg.toString(), "--out", file.toString()).assertUsageError("--out", file.toString(), "is a file");
        Path ro = Files.createDirectories(tmp.resolve("ro"));
        ro.toFile().setWritable(false, false);
        try {
            org.junit.jupiter.api.Assumptions.assumeFalse(Files.isWritable(ro), "running as root: folder permissions are not enforced");
            Cli.run("train", "--config", cfg.toString(), "--out", ro.resolve("run").toString())
                    .assertUsageError("--out", "permission denied");
        } finally {
            ro.toFile().setWritable(true, false);
        }
    }

    // ---- data ----

    @Test
    void shouldRefuseAnEmptyOrAllCorruptDataRoot(@TempDir Path tmp) throws Exception {
        Path empty = Files.createDirectories(tmp.resolve("empty"));
        refused(tmp, trainJson(tmp.resolve("t1.json"), n -> n.put("data_root", empty.toString())), List.of(),
                "data_root", empty.toString(), "no readable images");
        Path corrupt = Files.createDirectories(tmp.resolve("corrupt"));
        Files.write(corrupt.resolve("a.png"), new byte[] {1, 2, 3, 4});
        Files.write(corrupt.resolve("b.jpg"), "not a jpeg".getBytes(StandardCharsets.UTF_8));
        refused(tmp, trainJson(tmp.resolve("t2.json"), n -> n.put("data_root", corrupt.toString())), List.of(),
                "data_root", "no readable images");
    }

    @Test
    void shouldRefuseAPngTruncatedAfterItsHeader(@TempDir Path tmp) throws Exception {
        Path d = copyData(tmp.resolve("data"));
        Path png = firstImage(d);
        byte[] b = Files.readAllBytes(png);
        Files.write(png, Arrays.copyOf(b, 60)); // signature + IHDR intact: the size reads, the pixels do not
        refused(tmp, trainJson(tmp.resolve("t.json"), n -> n.put("data_root", d.toString())), List.of(),
                "data_root", png.getFileName().toString(), "cannot be decoded");
    }

    /**
     * The same PNG in a cluster run: only the workers decode images, so a rank meets it. The run stops
     * at once (no shrink: every generation would meet it), and train prints the rank's one error line
     * and exits 2, as the single-process run does.
     */
    @Test
    void aWorkerThatMeetsBadInputShouldStopTheClusterRunWithExitTwo(@TempDir Path tmp) throws Exception {
        Path d = copyData(tmp.resolve("data"));
        Path png = firstImage(d);
        Files.write(png, Arrays.copyOf(Files.readAllBytes(png), 60));
        Cli r = Cli.run("train", "--config", trainJson(tmp.resolve("t.json"), n -> n.put("data_root", d.toString())).toString(),
                "--out", tmp.resolve("out").toString(), "--workers", "2", "--max_steps", "2");
        assertEquals(2, r.status(), r.err());
        List<String> errors = r.err().lines().filter(l -> l.startsWith("error: ")).toList();
        assertEquals(1, errors.size(), r.err());
        assertTrue(errors.get(0).startsWith("error: rank ") && errors.get(0).contains(png.getFileName().toString())
                && errors.get(0).contains("cannot be decoded"), errors.get(0));
        assertFalse(r.err().contains("run failed"), r.err());
        assertFalse(r.err().contains("generation 1"), "no shrink or retry on bad input: " + r.err());
    }

    @Test
    void shouldRefuseCaptionsThatAreNotUtf8(@TempDir Path tmp) throws Exception {
        Path d = copyData(tmp.resolve("latin1"));
        Path caption = sidecar(firstImage(d));
        Files.write(caption, "caf\u00e9 au lait".getBytes(StandardCharsets.ISO_8859_1));
        refused(tmp, trainJson(tmp.resolve("t1.json"), n -> n.put("data_root", d.toString())), List.of(),
                caption.toString(), "not valid UTF-8", "0xE9");
        Path d2 = copyData(tmp.resolve("utf16"));
        Path caption2 = sidecar(firstImage(d2));
        Files.write(caption2, "a red circle".getBytes(StandardCharsets.UTF_16LE)); // no byte-order mark
        refused(tmp, trainJson(tmp.resolve("t2.json"), n -> n.put("data_root", d2.toString())), List.of(),
                caption2.toString(), "NUL", "byte-order mark");
    }

    static Path copyData(Path to) throws IOException {
        copyTree(inputs.data(), to);
        return to;
    }

    static Path firstImage(Path d) throws IOException {
        try (Stream<Path> s = Files.walk(d)) {
            return s.filter(p -> p.toString().endsWith(".png")).sorted().findFirst().orElseThrow();
        }
    }

    static Path sidecar(Path image) {
        String n = image.getFileName().toString();
        return image.resolveSibling(n.substring(0, n.lastIndexOf('.')) + ".txt");
    }

    // ---- safetensors ----

    @Test
    void shouldRefuseMissingTruncatedOrLyingSafetensors(@TempDir Path tmp) throws Exception {
        String te = "text_encoder/model.safetensors";
        int[] k = {0};
        // each case: a copy of the model with the text encoder's weights broken one way
        List<Object[]> cases = new ArrayList<>();
        cases.add(new Object[] {"missing", (IoEdit) f -> Files.delete(f), "file not found"});
        cases.add(new Object[] {"truncated", (IoEdit) f -> truncate(f, Files.size(f) - 100), "outside the"});
        cases.add(new Object[] {"short", (IoEdit) f -> truncate(f, 5), "only 5 bytes"});
        cases.add(new Object[] {"2^62", (IoEdit) f -> headerLength(f, 1L << 62), "header length 4611686018427387904"});
        cases.add(new Object[] {"negative", (IoEdit) f -> headerLength(f, -8), "header length -8"});
        cases.add(new Object[] {"garbage", (IoEdit) f -> garbageHeader(f), "not valid JSON"});
        cases.add(new Object[] {"lying", (IoEdit) f -> lyingOffsets(f), "outside the"});
        for (Object[] c : cases) {
            Path m = tmp.resolve("model-" + k[0]++);
            copyTree(inputs.model(), m);
            ((IoEdit) c[1]).apply(m.resolve(te));
            Path t = Files.createDirectories(tmp.resolve("case-" + k[0]));
            refused(t, trainJson(t.resolve("t.json"), n -> n.put("resume_ckpt", m.toString())), List.of(),
                    m.resolve(te).toString(), (String) c[2]);
        }
    }

    interface IoEdit {
        void apply(Path p) throws IOException;
    }

    static void truncate(Path f, long size) throws IOException {
        try (var ch = java.nio.channels.FileChannel.open(f, java.nio.file.StandardOpenOption.WRITE)) {
            ch.truncate(size);
        }
    }

    static void headerLength(Path f, long n) throws IOException {
        byte[] b = Files.readAllBytes(f);
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putLong(0, n);
        Files.write(f, b);
    }

    static void garbageHeader(Path f) throws IOException {
        byte[] b = Files.readAllBytes(f);
        for (int i = 8; i < 40; i++) {
            b[i] = (byte) ('#' + i % 7);
        }
        Files.write(f, b);
    }

    /** Rewrites the first tensor's end offset far past the data section (the data itself unchanged). */
    static void lyingOffsets(Path f) throws IOException {
        byte[] b = Files.readAllBytes(f);
        int n = (int) ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
        String h = new String(b, 8, n, StandardCharsets.UTF_8);
        byte[] lied = h.replaceFirst("\"data_offsets\":\\[(\\d+),(\\d+)\\]", "\"data_offsets\":[$1,999999999]")
                .getBytes(StandardCharsets.UTF_8);
        ByteBuffer out = ByteBuffer.allocate(8 + lied.length + b.length - 8 - n).order(ByteOrder.LITTLE_ENDIAN);
        out.putLong(lied.length).put(lied).put(b, 8 + n, b.length - 8 - n);
        Files.write(f, out.array());
    }

    // ---- resume ----

    @Test
    void shouldRefuseDamagedCheckpoints(@TempDir Path tmp) throws Exception {
        Path cfg = trainJson(tmp.resolve("t.json"), n -> n.put("max_steps", 2));
        String bin = "optimizer/unet/optimizer_state.bin";
        Path c1 = copyCheckpoint(tmp.resolve("truncated"));
        truncate(c1.resolve(bin), Files.size(c1.resolve(bin)) / 2);
        refused(tmp.resolve("r1"), cfg, List.of("--resume", c1.toString()), "--resume", c1.resolve(bin).toString(), "bytes");
        Path c2 = copyCheckpoint(tmp.resolve("flipped"));
        byte[] b = Files.readAllBytes(c2.resolve(bin));
        b[b.length / 3] ^= 0x10;
        Files.write(c2.resolve(bin), b);
        refused(tmp.resolve("r2"), cfg, List.of("--resume", c2.toString()), "--resume", c2.resolve(bin).toString(), "CRC32");
        Path c3 = copyCheckpoint(tmp.resolve("missing"));
        AtomicFiles.deleteRecursively(c3.resolve("optimizer/unet"));
        refused(tmp.resolve("r3"), cfg, List.of("--resume", c3.toString()), "--resume", "no optimizer state for the unet");
        Path c4 = copyCheckpoint(tmp.resolve("other-model"));
        Path unetCfg = c4.resolve("model/unet/config.json");
        ObjectNode u = (ObjectNode) Json.MAPPER.readTree(unetCfg.toFile());
        u.put("sample_size", u.path("sample_size").asInt() * 2);
        Files.writeString(unetCfg, u.toPrettyString());
        refused(tmp.resolve("r4"), cfg, List.of("--resume", c4.toString()), "--resume", "another model", "unet/config.json");
        Path lion = Files.writeString(tmp.resolve("lion.json"), "{\"base\": {\"optimizer\": \"lion\", \"lr\": 1e-5}}");
        refused(tmp.resolve("r5"), cfg, List.of("--resume", checkpoint.toString(), "--optimizer_config", lion.toString()),
                "--resume", "adamw8bit", "lion");
    }

    @Test
    void shouldRefuseTrainerStateFieldsThatAreNotStepCounts(@TempDir Path tmp) throws Exception {
        Path cfg = trainJson(tmp.resolve("t.json"), n -> n.put("max_steps", 2));
        for (String bad : List.of("\"two\"", "-5", "1e400", "2.5")) {
            Path c = copyCheckpoint(tmp.resolve("c" + bad.hashCode()));
            Path state = c.resolve("trainer_state.json");
            ObjectNode n = (ObjectNode) Json.MAPPER.readTree(state.toFile());
            n.set("step", Json.MAPPER.readTree(bad));
            Files.writeString(state, n.toPrettyString());
            refused(tmp.resolve("r" + bad.hashCode()), cfg, List.of("--resume", c.toString()), state.toString(), "at step",
                    bad.equals("1e400") ? "step" : bad, "whole number >= 0");
        }
    }

    static Path copyCheckpoint(Path to) throws IOException {
        copyTree(checkpoint, to);
        return to;
    }

    static void copyTree(Path from, Path to) throws IOException {
        try (Stream<Path> s = Files.walk(from)) {
            for (Path p : s.toList()) {
                Path q = to.resolve(from.relativize(p).toString());
                if (Files.isDirectory(p)) {
                    Files.createDirectories(q);
                } else {
                    Files.copy(p, q, StandardCopyOption.REPLACE_EXISTING);
                }
            }
        }
    }
}
