package dev.dreamcluster.safetensors;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dreamcluster.config.Json;
import dev.dreamcluster.io.AtomicFiles;
import dev.dreamcluster.model.ModelError;
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

    /**
     * Reads only the header; tensor data is read on demand. Every way a file can be missing, short
     * or lying (header length past the end, 2^62 or negative, garbage or non-object JSON, offsets
     * outside the data section, a shape whose size overflows or disagrees with its byte range) is a
     * {@link ModelError} naming the file and what is wrong; the header buffer is never larger than
     * the file.
     */
    public static SafetensorsFile open(Path path) {
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            return parse(path, ch);
        } catch (java.nio.file.NoSuchFileException e) {
            throw new ModelError(path + ": file not found (a safetensors file is required here)");
        } catch (IOException e) {
            throw new ModelError(path + ": cannot read: " + e.getMessage());
        }
    }

    private static SafetensorsFile parse(Path path, FileChannel ch) throws IOException {
        long size = ch.size();
        if (size < 8) {
            throw bad(path, "only " + size + " bytes (a safetensors file starts with an 8-byte header length)");
        }
        ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        readFully(ch, len, 0);
        long n = len.getLong(0);
        if (n < 2 || n > MAX_HEADER || n > size - 8) {
            throw bad(path, "header length " + n + " in a " + size + "-byte file (allowed: 2.." + Math.min(MAX_HEADER, size - 8) + ")");
        }
        ByteBuffer hb = ByteBuffer.allocate((int) n);
        readFully(ch, hb, 8);
        JsonNode header;
        try {
            header = Json.MAPPER.readTree(new String(hb.array(), StandardCharsets.UTF_8).trim());
        } catch (IOException e) {
            throw bad(path, "header is not valid JSON (" + firstLine(e.getMessage()) + ")");
        }
        if (header == null || !header.isObject()) {
            throw bad(path, "header is not a JSON object");
        }
        Map<String, TensorInfo> tensors = new LinkedHashMap<>();
        Map<String, String> meta = new LinkedHashMap<>();
        long dataSize = size - 8 - n;
        for (Iterator<Map.Entry<String, JsonNode>> it = header.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            if (e.getKey().equals("__metadata__")) {
                if (!e.getValue().isObject()) {
                    throw bad(path, "__metadata__ is not an object of strings");
                }
                e.getValue().fields().forEachRemaining(m -> meta.put(m.getKey(), m.getValue().asText()));
                continue;
            }
            TensorInfo info = entry(path, e.getKey(), e.getValue(), dataSize);
            tensors.put(e.getKey(), info);
        }
        checkTiling(path, tensors.values(), dataSize);
        return new SafetensorsFile(path, 8 + n, tensors, meta);
    }

    /**
     * The tensors' byte ranges must tile the data section exactly, as the reference library requires:
     * sorted by offset, each starts where the one before ended, the first at 0, the last at the end. An
     * overlap would let two tensors alias the same bytes (a write to one changes the other); a hole or
     * trailing bytes hide data no tensor accounts for (a truncated or spliced file).
     */
    private static void checkTiling(Path path, java.util.Collection<TensorInfo> infos, long dataSize) {
        java.util.List<TensorInfo> sorted = new java.util.ArrayList<>(infos);
        sorted.sort(java.util.Comparator.comparingLong(TensorInfo::begin).thenComparingLong(TensorInfo::end));
        long expected = 0;
        String previous = null;
        for (TensorInfo t : sorted) {
            if (t.begin() < expected) {
                throw bad(path, "tensor " + t.name() + " at data_offsets [" + t.begin() + ", " + t.end() + "] overlaps tensor " + previous
                        + " (which ends at " + expected + "); allowed: byte ranges that do not overlap");
            }
            if (t.begin() > expected) {
                throw bad(path, "bytes [" + expected + ", " + t.begin() + ") before tensor " + t.name()
                        + " belong to no tensor; allowed: byte ranges that cover the data section without holes");
            }
            expected = t.end();
            previous = t.name();
        }
        if (expected != dataSize) {
            throw bad(path, "the last " + (dataSize - expected) + " bytes of the data section (after " + (previous == null ? "the header"
                    : "tensor " + previous) + ") belong to no tensor; allowed: byte ranges that cover the data section without holes");
        }
    }

    /** One header entry, checked: dtype string, shape of whole numbers >= 0, offsets inside the data. */
    private static TensorInfo entry(Path path, String name, JsonNode t, long dataSize) {
        String where = "tensor " + Json.quote(name);
        if (!t.isObject() || !t.path("dtype").isTextual() || !t.path("shape").isArray() || !t.path("data_offsets").isArray()
                || t.path("data_offsets").size() != 2) {
            throw bad(path, where + " is not {\"dtype\": string, \"shape\": [...], \"data_offsets\": [begin, end]}");
        }
        String dt = t.get("dtype").asText();
        DType dtype = DType.parse(dt);
        JsonNode shapeNode = t.get("shape");
        if (shapeNode.size() > 16) {
            throw bad(path, where + " has " + shapeNode.size() + " dimensions (allowed: at most 16)");
        }
        long[] shape = new long[shapeNode.size()];
        long numel = 1; // -1 once the product overflows
        boolean empty = false;
        for (int i = 0; i < shape.length; i++) {
            JsonNode d = shapeNode.get(i);
            if (!d.canConvertToLong() || !d.isIntegralNumber() || d.asLong() < 0) {
                throw bad(path, where + " has shape " + shapeNode + " (allowed: whole numbers >= 0)");
            }
            shape[i] = d.asLong();
            if (shape[i] == 0) {
                empty = true;
            } else if (numel >= 0) {
                numel = multiplyOrNegative(numel, shape[i]);
            }
        }
        if (empty) {
            numel = 0;
        }
        JsonNode o = t.get("data_offsets");
        if (!o.get(0).isIntegralNumber() || !o.get(1).isIntegralNumber() || !o.get(0).canConvertToLong()
                || !o.get(1).canConvertToLong()) {
            throw bad(path, where + " has data_offsets " + o + " (allowed: two whole numbers)");
        }
        long begin = o.get(0).asLong();
        long end = o.get(1).asLong();
        if (begin < 0 || end < begin || end > dataSize) {
            throw bad(path, where + " has data_offsets [" + begin + ", " + end + "] outside the " + dataSize
                    + "-byte data section (truncated file?)");
        }
        if (dtype == null) {
            // an integer buffer (position_ids) or an exotic dtype: listed with a null dtype, never read as floats
            return new TensorInfo(name, null, shape, begin, end);
        }
        if (numel < 0 || numel > Long.MAX_VALUE / dtype.bytes || numel * dtype.bytes != end - begin) {
            throw bad(path, where + " " + dt + java.util.Arrays.toString(shape) + " needs "
                    + (numel < 0 || numel > Long.MAX_VALUE / dtype.bytes ? "more than 2^63" : Long.toString(numel * dtype.bytes))
                    + " bytes, header gives " + (end - begin));
        }
        return new TensorInfo(name, dtype, shape, begin, end);
    }

    private static long multiplyOrNegative(long a, long b) {
        long hi = Math.multiplyHigh(a, b);
        long lo = a * b;
        return hi != 0 || lo < 0 ? -1 : lo;
    }

    private static ModelError bad(Path path, String what) {
        return new ModelError(path + ": not a valid safetensors file: " + what);
    }

    private static String firstLine(String s) {
        if (s == null) {
            return "";
        }
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
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
        if (t.numel() > Integer.MAX_VALUE - 8) {
            throw new ModelError(path + ": tensor " + name + " has " + t.numel() + " elements (allowed: at most 2^31 - 9 per tensor)");
        }
        int n = (int) t.numel();
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
            throw new ModelError(path + ": cannot read tensor " + name + ": " + e.getMessage());
        }
    }

    public float[] readFloats(String name) {
        TensorInfo t = tensors.get(name);
        if (t == null) {
            throw new IllegalArgumentException(path + ": no tensor " + name);
        }
        if (t.numel() > Integer.MAX_VALUE - 8) {
            throw new ModelError(path + ": tensor " + name + " has " + t.numel() + " elements (allowed: at most 2^31 - 9 per tensor)");
        }
        float[] out = new float[(int) t.numel()];
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
