package dev.dreamcluster.safetensors;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dreamcluster.config.Json;
import dev.dreamcluster.io.AtomicFiles;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A safetensors file: {@code u64 little-endian header length | JSON header | data}. The header maps
 * each tensor name to {@code {"dtype", "shape", "data_offsets": [begin, end]}} (offsets relative to
 * the data section) and may hold {@code "__metadata__"} (string to string). Tensors are read one at a
 * time through a mapped region, so files larger than 2 GiB are fine as long as each tensor is not.
 */
public final class SafetensorsFile {
    /** Headers beyond this are refused: real SD headers are ~100 KB. */
    static final long MAX_HEADER = 100L << 20;

    private final Path path;
    private final long dataStart;
    private final Map<String, TensorInfo> tensors;
    private final Map<String, String> metadata;

    private SafetensorsFile(Path path, long dataStart, Map<String, TensorInfo> tensors, Map<String, String> metadata) {
        this.path = path;
        this.dataStart = dataStart;
        this.tensors = tensors;
        this.metadata = metadata;
    }

    /** Reads only the header; tensor data is read on demand. */
    public static SafetensorsFile open(Path path) {
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            long size = ch.size();
            ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            readFully(ch, len, 0);
            long n = len.getLong(0);
            if (n < 2 || n > MAX_HEADER || 8 + n > size) {
                throw new IllegalArgumentException(path + ": not a safetensors file (header length " + n + ", file " + size + " bytes)");
            }
            ByteBuffer hb = ByteBuffer.allocate((int) n);
            readFully(ch, hb, 8);
            JsonNode header = Json.MAPPER.readTree(new String(hb.array(), StandardCharsets.UTF_8).trim());
            Map<String, TensorInfo> tensors = new LinkedHashMap<>();
            Map<String, String> meta = new LinkedHashMap<>();
            long dataSize = size - 8 - n;
            for (Iterator<Map.Entry<String, JsonNode>> it = header.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                if (e.getKey().equals("__metadata__")) {
                    e.getValue().fields().forEachRemaining(m -> meta.put(m.getKey(), m.getValue().asText()));
                    continue;
                }
                JsonNode t = e.getValue();
                String dt = t.path("dtype").asText();
                DType dtype = DType.parse(dt);
                JsonNode shapeNode = t.path("shape");
                long[] shape = new long[shapeNode.size()];
                for (int i = 0; i < shape.length; i++) {
                    shape[i] = shapeNode.get(i).asLong();
                }
                long begin = t.path("data_offsets").path(0).asLong(-1);
                long end = t.path("data_offsets").path(1).asLong(-1);
                if (begin < 0 || end < begin || end > dataSize) {
                    throw new IllegalArgumentException(path + ": tensor " + e.getKey() + " has data_offsets [" + begin + ", "
                            + end + "] outside the " + dataSize + "-byte data section");
                }
                if (dtype == null) {
                    // an integer buffer (position_ids) or an exotic dtype: listed with a null dtype, never read as floats
                    tensors.put(e.getKey(), new TensorInfo(e.getKey(), null, shape, begin, end));
                    continue;
                }
                TensorInfo info = new TensorInfo(e.getKey(), dtype, shape, begin, end);
                if (info.numel() * dtype.bytes != end - begin) {
                    throw new IllegalArgumentException(path + ": tensor " + e.getKey() + " " + dt + java.util.Arrays.toString(shape)
                            + " needs " + info.numel() * dtype.bytes + " bytes, header gives " + (end - begin));
                }
                tensors.put(e.getKey(), info);
            }
            return new SafetensorsFile(path, 8 + n, tensors, meta);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + path, e);
        }
    }

    private static void readFully(FileChannel ch, ByteBuffer b, long pos) throws IOException {
        while (b.hasRemaining()) {
            int r = ch.read(b, pos + b.position());
            if (r < 0) {
                throw new IOException("unexpected end of file");
            }
        }
        b.flip();
    }

    public Path path() {
        return path;
    }

    /** Every entry of the header, in file order (dtype null for entries DreamCluster does not read). */
    public Map<String, TensorInfo> tensors() {
        return tensors;
    }

    public Map<String, String> metadata() {
        return metadata;
    }

    /** Tensor {@code name} as float32, converted from its stored dtype, into {@code out[off..]}. */
    public void readFloats(String name, float[] out, int off) {
        TensorInfo t = tensors.get(name);
        if (t == null || t.dtype() == null) {
            throw new IllegalArgumentException(path + ": no float tensor " + name);
        }
        int n = Math.toIntExact(t.numel());
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            ByteBuffer b = ch.map(FileChannel.MapMode.READ_ONLY, dataStart + t.begin(), t.end() - t.begin())
                    .order(ByteOrder.LITTLE_ENDIAN);
            switch (t.dtype()) {
                case F32 -> b.asFloatBuffer().get(out, off, n);
                case F16 -> {
                    for (int i = 0; i < n; i++) {
                        out[off + i] = Half.halfToFloat(b.getShort(2 * i));
                    }
                }
                case BF16 -> {
                    for (int i = 0; i < n; i++) {
                        out[off + i] = Half.bf16ToFloat(b.getShort(2 * i));
                    }
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + name + " from " + path, e);
        }
    }

    public float[] readFloats(String name) {
        TensorInfo t = tensors.get(name);
        if (t == null) {
            throw new IllegalArgumentException(path + ": no tensor " + name);
        }
        float[] out = new float[Math.toIntExact(t.numel())];
        readFloats(name, out, 0);
        return out;
    }

    /** A tensor to write: float32 values and the shape they have. */
    public record Entry(long[] shape, float[] values) {}

    /**
     * A tensor produced when the writer reaches it, so a multi-GB model is never in memory at once.
     */
    public interface Source {
        String name();

        long[] shape();

        /** Called once, when the tensor is written. */
        float[] values();
    }

    /** Writes in-memory tensors; see {@link #write(Path, java.util.List, DType, Map)}. */
    public static void write(Path path, Map<String, Entry> tensors, DType dtype, Map<String, String> metadata) {
        java.util.List<Source> sources = new java.util.ArrayList<>();
        tensors.forEach((name, e) -> sources.add(new Source() {
            @Override
            public String name() {
                return name;
            }

            @Override
            public long[] shape() {
                return e.shape();
            }

            @Override
            public float[] values() {
                return e.values();
            }
        }));
        write(path, sources, dtype, metadata);
    }

    /**
     * Writes {@code tensors} (in the given order) as {@code dtype} to {@code path}: to a temporary
     * sibling first, fsynced, then renamed, so a crash never leaves a torn file under the real name.
     */
    public static void write(Path path, java.util.List<Source> tensors, DType dtype, Map<String, String> metadata) {
        ObjectNode header = Json.MAPPER.createObjectNode();
        if (metadata != null && !metadata.isEmpty()) {
            ObjectNode m = header.putObject("__metadata__");
            metadata.forEach(m::put);
        }
        long offset = 0;
        for (Source e : tensors) {
            long n = 1;
            for (long d : e.shape()) {
                n *= d;
            }
            ObjectNode t = header.putObject(e.name());
            t.put("dtype", dtype.name());
            var shape = t.putArray("shape");
            for (long d : e.shape()) {
                shape.add(d);
            }
            t.putArray("data_offsets").add(offset).add(offset + n * dtype.bytes);
            offset += n * dtype.bytes;
        }
        byte[] json;
        try {
            json = Json.MAPPER.writeValueAsBytes(header);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        int padded = (json.length + 7) / 8 * 8; // the data section starts 8-byte aligned; pad with spaces
        Path tmp = AtomicFiles.tempFileFor(path);
        try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            ByteBuffer head = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
            head.putLong(padded).put(json);
            while (head.hasRemaining()) {
                head.put((byte) ' ');
            }
            head.flip();
            writeAll(ch, head);
            ByteBuffer buf = ByteBuffer.allocate(1 << 20).order(ByteOrder.LITTLE_ENDIAN);
            for (Source e : tensors) {
                float[] values = e.values();
                long expect = 1;
                for (long d : e.shape()) {
                    expect *= d;
                }
                if (values.length != expect) {
                    throw new IllegalArgumentException(e.name() + ": " + values.length + " values for shape "
                            + java.util.Arrays.toString(e.shape()));
                }
                for (float f : values) {
                    if (buf.remaining() < 4) {
                        buf.flip();
                        writeAll(ch, buf);
                        buf.clear();
                    }
                    switch (dtype) {
                        case F32 -> buf.putFloat(f);
                        case F16 -> buf.putShort(Half.floatToHalf(f));
                        case BF16 -> buf.putShort(Half.floatToBf16(f));
                    }
                }
            }
            buf.flip();
            writeAll(ch, buf);
            ch.force(true);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + tmp, e);
        }
        try {
            AtomicFiles.commit(tmp, path);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot rename " + tmp + " to " + path, e);
        }
    }

    private static void writeAll(FileChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            ch.write(b);
        }
    }
}
