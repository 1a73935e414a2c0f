package dev.dreamcluster.optim;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.config.Json;
import dev.dreamcluster.config.OptimizerName;
import dev.dreamcluster.io.AtomicFiles;
import dev.dreamcluster.optim.kernel.QuantMap;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.CRC32;

/**
 * On-disk form of an {@link OptimizerState}: two files in one folder.
 *
 * <pre>
 *   optimizer_state.bin   every array of every slice, back to back, little-endian
 *                         (float32 m, v, absmax1, absmax2; uint8 codes c1, c2)
 *   optimizer_state.json  {"format": "dreamcluster-optimizer-state", "version": 1,
 *                          "optimizer": "adamw8bit", "beta1", "beta2", "eps", "weight_decay",
 *                          "step": N, "block_size": 256, "min_8bit_size": 4096,
 *                          "data_bytes": B, "crc32": C,
 *                          "tensors": [{"name", "numel", "start", "length", "kind",
 *                                       "arrays": [{"name": "c1", "dtype": "uint8",
 *                                                   "offset": bytes, "count": n}, ...]}]}
 * </pre>
 *
 * Each file is written under a temporary name, fsynced and renamed; the JSON goes last, so a folder
 * whose JSON exists and whose CRC matches is complete. Codes and absmax use bitsandbytes' maps
 * ({@link QuantMap}), so they can be compared with a bitsandbytes state_dict's state1/state2/absmax.
 */
public final class OptimizerStateFile {
    public static final String JSON = "optimizer_state.json";
    public static final String DATA = "optimizer_state.bin";
    static final String FORMAT = "dreamcluster-optimizer-state";

    private OptimizerStateFile() {}

    public static void write(OptimizerState state, Path dir) {
        try {
            Files.createDirectories(dir);
            ObjectNode root = Json.MAPPER.createObjectNode();
            root.put("format", FORMAT);
            root.put("version", 1);
            root.put("optimizer", state.hyper().name().key());
            root.put("beta1", state.hyper().beta1());
            root.put("beta2", state.hyper().beta2());
            root.put("eps", state.hyper().eps());
            root.put("weight_decay", state.hyper().weightDecay());
            root.put("step", state.step());
            root.put("block_size", QuantMap.BLOCK);
            root.put("min_8bit_size", TensorState.MIN_8BIT_SIZE);
            ArrayNode tensors = root.putArray("tensors");
            long bytes = 0;
            for (TensorState t : state.tensors()) {
                bytes += t.bytes();
            }
            ByteBuffer buf = ByteBuffer.allocate(Math.toIntExact(bytes)).order(ByteOrder.LITTLE_ENDIAN);
            for (TensorState t : state.tensors()) {
                ObjectNode tn = tensors.addObject();
                tn.put("name", t.slice.name());
                tn.put("numel", t.slice.numel());
                tn.put("start", t.slice.start());
                tn.put("length", t.slice.length());
                tn.put("kind", t.kind.name());
                ArrayNode arrays = tn.putArray("arrays");
                putF(arrays, buf, "m", t.m);
                putF(arrays, buf, "v", t.v);
                putB(arrays, buf, "c1", t.c1);
                putB(arrays, buf, "c2", t.c2);
                putF(arrays, buf, "absmax1", t.absmax1);
                putF(arrays, buf, "absmax2", t.absmax2);
            }
            CRC32 crc = new CRC32();
            crc.update(buf.array());
            root.put("data_bytes", bytes);
            root.put("crc32", crc.getValue());
            AtomicFiles.write(dir.resolve(DATA), ByteBuffer.wrap(buf.array()));
            byte[] json = Json.MAPPER.writerWithDefaultPrettyPrinter().writeValueAsBytes(root);
            AtomicFiles.write(dir.resolve(JSON), ByteBuffer.wrap(json));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write optimizer state to " + dir, e);
        }
    }

    private static void putF(ArrayNode arrays, ByteBuffer buf, String name, float[] a) {
        if (a == null) {
            return;
        }
        ObjectNode n = arrays.addObject();
        n.put("name", name).put("dtype", "float32").put("offset", buf.position()).put("count", a.length);
        for (float f : a) {
            buf.putFloat(f);
        }
    }

    private static void putB(ArrayNode arrays, ByteBuffer buf, String name, byte[] a) {
        if (a == null) {
            return;
        }
        ObjectNode n = arrays.addObject();
        n.put("name", name).put("dtype", "uint8").put("offset", buf.position()).put("count", a.length);
        buf.put(a);
    }

    /**
     * Reads a state folder. A missing, truncated, bit-flipped or inconsistent pair of files is a
     * {@link ConfigError} naming the file (the data file's size and CRC32 are checked against the
     * JSON before anything is parsed; every offset is checked against the data).
     */
    public static OptimizerState read(Path dir) {
        Path jsonFile = dir.resolve(JSON);
        Path dataFile = dir.resolve(DATA);
        JsonNode root = Json.readObject(jsonFile, jsonFile.toString());
        if (!FORMAT.equals(root.path("format").asText()) || root.path("version").asInt() != 1) {
            throw new ConfigError(jsonFile + ": not a version-1 " + FORMAT + " file");
        }
        if (root.path("block_size").asInt() != QuantMap.BLOCK
                || root.path("min_8bit_size").asInt() != TensorState.MIN_8BIT_SIZE) {
            throw new ConfigError(jsonFile + ": block_size/min_8bit_size differ from this build's");
        }
        long expected = Json.wholeNumber(root.get("data_bytes"), jsonFile + " at data_bytes", 0, Integer.MAX_VALUE - 8,
                "a byte count");
        byte[] data;
        try {
            if (Files.size(dataFile) != expected) {
                throw new ConfigError(dataFile + ": " + Files.size(dataFile) + " bytes, " + JSON + " says " + expected
                        + " (truncated or foreign file)");
            }
            data = Files.readAllBytes(dataFile);
        } catch (java.nio.file.NoSuchFileException e) {
            throw new ConfigError(dataFile + ": missing (" + JSON + " describes it)");
        } catch (IOException e) {
            throw new ConfigError(dataFile + ": cannot read: " + e.getMessage());
        }
        CRC32 crc = new CRC32();
        crc.update(data);
        if (data.length != expected || crc.getValue() != root.path("crc32").asLong()) {
            throw new ConfigError(dataFile + ": size or CRC32 does not match " + JSON + " (torn, damaged or foreign file)");
        }
        try {
            return parse(root, jsonFile, ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN));
        } catch (IllegalArgumentException | IndexOutOfBoundsException | java.nio.BufferUnderflowException e) {
            throw new ConfigError(jsonFile + ": inconsistent with " + DATA + ": " + e.getMessage());
        }
    }

    private static OptimizerState parse(JsonNode root, Path jsonFile, ByteBuffer buf) {
        OptimizerHyper hyper = new OptimizerHyper(OptimizerName.parse(root.path("optimizer").asText(), jsonFile.toString()),
                root.path("beta1").asDouble(), root.path("beta2").asDouble(), root.path("eps").asDouble(),
                root.path("weight_decay").asDouble());
        List<TensorState> tensors = new ArrayList<>();
        for (JsonNode tn : root.path("tensors")) {
            TensorSlice slice = new TensorSlice(tn.path("name").asText(), tn.path("numel").asLong(),
                    tn.path("start").asLong(), tn.path("length").asInt());
            float[][] f = new float[4][];
            byte[][] b = new byte[2][];
            for (JsonNode an : tn.path("arrays")) {
                int off = an.path("offset").asInt();
                int count = an.path("count").asInt();
                String name = an.path("name").asText();
                boolean floats = List.of("m", "v", "absmax1", "absmax2").contains(name);
                if (off < 0 || count < 0 || (long) off + (long) count * (floats ? 4 : 1) > buf.capacity()) {
                    throw new IllegalArgumentException("array " + name + " of " + slice.name() + " lies outside the data");
                }
                switch (name) {
                    case "m", "v", "absmax1", "absmax2" -> {
                        float[] a = new float[count];
                        buf.position(off).asFloatBuffer().get(a);
                        f[List.of("m", "v", "absmax1", "absmax2").indexOf(name)] = a;
                    }
                    case "c1", "c2" -> {
                        byte[] a = new byte[count];
                        buf.position(off).get(a);
                        b[name.equals("c1") ? 0 : 1] = a;
                    }
                    default -> throw new IllegalArgumentException("unknown array " + name);
                }
            }
            tensors.add(new TensorState(slice, TensorState.Kind.valueOf(tn.path("kind").asText()), f[0], f[1], b[0],
                    b[1], f[2], f[3]));
        }
        return new OptimizerState(hyper, root.path("step").asLong(), tensors);
    }
}
