package dev.dreamcluster.tensorboard;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.zip.CRC32C;

/**
 * Appends TensorBoard events to {@code <dir>/events.out.tfevents.<unix seconds>.<host>}. Each record
 * is {@code uint64 length, uint32 masked_crc32c(length), Event bytes, uint32 masked_crc32c(bytes)},
 * little-endian; the first event holds {@code file_version: "brain.Event:2"}. Messages used
 * (tensorflow/core/util/event.proto, framework/summary.proto):
 *
 * <pre>
 *   Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
 *   Summary { repeated Value value = 1; }
 *   Value   { string tag = 1; float simple_value = 2; Image image = 4; }
 *   Image   { int32 height = 1; int32 width = 2; int32 colorspace = 3; bytes encoded_image_string = 4; }
 * </pre>
 *
 * Every event is written with one call and forced to disk on {@link #flush}; a crash loses at most
 * the unflushed tail, and TensorBoard skips a torn last record. One writer per file, one thread.
 */
public final class EventFileWriter implements AutoCloseable {
    private static final int MASK_DELTA = 0xa282ead8;

    private final Path file;
    private final FileChannel channel;

    private EventFileWriter(Path file, FileChannel channel) {
        this.file = file;
        this.channel = channel;
    }

    /** Creates {@code dir} if needed and a new event file in it, starting with the file_version event. */
    public static EventFileWriter open(Path dir) {
        long now = System.currentTimeMillis();
        Path file = dir.resolve("events.out.tfevents." + now / 1000 + "." + host());
        try {
            Files.createDirectories(dir);
            FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
            EventFileWriter w = new EventFileWriter(file, ch);
            w.write(new Proto().fixed64(1, now / 1000.0).string(3, "brain.Event:2"));
            w.flush();
            return w;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create a TensorBoard event file in " + dir, e);
        }
    }

    private static String host() {
        try {
            return InetAddress.getLocalHost().getHostName().replaceAll("[^A-Za-z0-9._-]", "_");
        } catch (IOException e) {
            return "localhost";
        }
    }

    public Path file() {
        return file;
    }

    /** One scalar (TensorBoard's "Scalars" tab) at {@code step}. */
    public void scalar(String tag, long step, double value) {
        Proto v = new Proto().string(1, tag).fixed32(2, (float) value);
        write(event(step).message(5, new Proto().message(1, v)));
    }

    /** One PNG (TensorBoard's "Images" tab) at {@code step}; colorspace 3 is RGB. */
    public void image(String tag, long step, byte[] png, int width, int height) {
        Proto img = new Proto().varint(1, height).varint(2, width).varint(3, 3).bytes(4, png);
        Proto v = new Proto().string(1, tag).message(4, img);
        write(event(step).message(5, new Proto().message(1, v)));
    }

    private static Proto event(long step) {
        return new Proto().fixed64(1, System.currentTimeMillis() / 1000.0).varint(2, step);
    }

    private void write(Proto event) {
        byte[] data = event.toByteArray();
        ByteBuffer b = ByteBuffer.allocate(8 + 4 + data.length + 4).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(data.length);
        b.putInt(maskedCrc32c(b.array(), 0, 8));
        b.put(data);
        b.putInt(maskedCrc32c(data, 0, data.length));
        b.flip();
        try {
            while (b.hasRemaining()) {
                channel.write(b);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + file, e);
        }
    }

    /** Forces what was written to disk (TensorBoard reads the file while it grows). */
    public void flush() {
        try {
            channel.force(false);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + file, e);
        }
    }

    /** TFRecord's CRC mask: rotate right by 15 bits, add a constant (so CRCs of CRCs stay distinct). */
    public static int maskedCrc32c(byte[] data, int off, int len) {
        CRC32C crc = new CRC32C();
        crc.update(data, off, len);
        int c = (int) crc.getValue();
        return ((c >>> 15) | (c << 17)) + MASK_DELTA;
    }

    @Override
    public void close() {
        try {
            channel.force(false);
            channel.close();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot close " + file, e);
        }
    }
}
