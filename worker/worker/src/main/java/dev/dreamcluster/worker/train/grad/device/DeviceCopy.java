package dev.dreamcluster.worker.train.grad.device;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Host <-> device copies of 1-d fp32 (and uint8) tensors of any size, in chunks. DJL's own transfers
 * count bytes in an {@code int} ({@code NDManager.create(Buffer, Shape)}, {@code toByteBuffer}, the
 * JNI's 2 GiB check), so a tensor past 2 GiB is never moved in one piece: it is created on the device
 * by libtorch ({@link #zeros}, no host buffer) and filled or read {@code chunkBytes} at a time (at most
 * {@link #MAX_CHUNK_BYTES}) at {@code long} element offsets. Host arrays hold at most 2^31-1 elements,
 * so a larger tensor is moved as several arrays at increasing offsets.
 *
 * <p>Each chunk is one direct buffer (reused across chunks) and one libtorch copy into or out of a
 * view of the tensor; temporaries are closed per call. The copies are synchronous.
 */
public final class DeviceCopy {
    /** The largest piece moved at once: 256 MiB. */
    public static final long MAX_CHUNK_BYTES = 256L << 20;

    private DeviceCopy() {}

    /** A new 1-d tensor of {@code numel} zeros of {@code type} on {@code m}'s device, allocated by libtorch. */
    public static NDArray zeros(NDManager m, long numel, DataType type) {
        if (numel < 0) {
            throw new IllegalArgumentException("numel must be >= 0: " + numel);
        }
        return m.zeros(new Shape(numel), type, m.getDevice());
    }

    /** A new 1-d fp32 tensor on {@code m}'s device holding {@code src}, uploaded in chunks of at most 256 MiB. */
    public static NDArray upload(NDManager m, float[] src) {
        NDArray t = zeros(m, src.length, DataType.FLOAT32);
        upload(src, 0, t, 0, src.length, MAX_CHUNK_BYTES);
        return t;
    }

    /** {@code dst[dstOff .. dstOff + n) = src[srcOff .. srcOff + n)}, in chunks of at most 256 MiB. */
    public static void upload(float[] src, int srcOff, NDArray dst, long dstOff, int n) {
        upload(src, srcOff, dst, dstOff, n, MAX_CHUNK_BYTES);
    }

    /** {@link #upload(float[], int, NDArray, long, int)} moving at most {@code chunkBytes} per piece. */
    public static void upload(float[] src, int srcOff, NDArray dst, long dstOff, int n, long chunkBytes) {
        check(src.length, srcOff, n, dst, DataType.FLOAT32, dstOff, chunkBytes);
        int per = perChunk(n, chunkBytes, 4);
        ByteBuffer buf = n == 0 ? null : ByteBuffer.allocateDirect(per * 4).order(ByteOrder.nativeOrder());
        for (int done = 0; done < n; done += per) {
            int k = Math.min(per, n - done);
            buf.clear();
            buf.asFloatBuffer().put(src, srcOff + done, k);
            buf.limit(k * 4);
            put(dst, dstOff + done, buf, k, DataType.FLOAT32);
        }
    }

    /** {@code dst[dstOff .. dstOff + n) = src[srcOff .. srcOff + n)} for a uint8 tensor. */
    public static void upload(byte[] src, int srcOff, NDArray dst, long dstOff, int n, long chunkBytes) {
        check(src.length, srcOff, n, dst, DataType.UINT8, dstOff, chunkBytes);
        int per = perChunk(n, chunkBytes, 1);
        ByteBuffer buf = n == 0 ? null : ByteBuffer.allocateDirect(per).order(ByteOrder.nativeOrder());
        for (int done = 0; done < n; done += per) {
            int k = Math.min(per, n - done);
            buf.clear();
            buf.put(src, srcOff + done, k);
            buf.flip();
            put(dst, dstOff + done, buf, k, DataType.UINT8);
        }
    }

    /** {@code dst[dstOff .. dstOff + n) = src[srcOff .. srcOff + n)}, in chunks of at most 256 MiB. */
    public static void download(NDArray src, long srcOff, float[] dst, int dstOff, int n) {
        download(src, srcOff, dst, dstOff, n, MAX_CHUNK_BYTES);
    }

    /** {@link #download(NDArray, long, float[], int, int)} moving at most {@code chunkBytes} per piece. */
    public static void download(NDArray src, long srcOff, float[] dst, int dstOff, int n, long chunkBytes) {
        check(dst.length, dstOff, n, src, DataType.FLOAT32, srcOff, chunkBytes);
        int per = perChunk(n, chunkBytes, 4);
        for (int done = 0; done < n; done += per) {
            int k = Math.min(per, n - done);
            try (NDScope scope = new NDScope()) {
                scope.suppressNotUsedWarning();
                get(src, srcOff + done, k).asFloatBuffer().get(dst, dstOff + done, k);
            }
        }
    }

    /** {@code dst[dstOff .. dstOff + n) = src[srcOff .. srcOff + n)} from a uint8 tensor. */
    public static void download(NDArray src, long srcOff, byte[] dst, int dstOff, int n, long chunkBytes) {
        check(dst.length, dstOff, n, src, DataType.UINT8, srcOff, chunkBytes);
        int per = perChunk(n, chunkBytes, 1);
        for (int done = 0; done < n; done += per) {
            int k = Math.min(per, n - done);
            try (NDScope scope = new NDScope()) {
                scope.suppressNotUsedWarning();
                get(src, srcOff + done, k).get(dst, dstOff + done, k);
            }
        }
    }

    /** The {@code n} elements at {@code off} as a native-order buffer (valid inside the caller's scope). */
    private static ByteBuffer get(NDArray src, long off, int n) {
        NDArray view = src.get(new NDIndex().addSliceDim(off, off + n));
        NDArray host = view.getDevice().equals(Device.cpu()) ? view : view.toDevice(Device.cpu(), false);
        // on the CPU the direct buffer aliases the (contiguous) view: read it before the scope closes
        return host.toByteBuffer(true).order(ByteOrder.nativeOrder());
    }

    private static void put(NDArray dst, long off, ByteBuffer buf, int n, DataType type) {
        try (NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            // created on dst's device; on the CPU it wraps buf, which stays alive until the copy is done
            NDArray piece = dst.getManager().create(buf, new Shape(n), type);
            dst.set(new NDIndex().addSliceDim(off, off + n), piece);
        }
    }

    private static int perChunk(int n, long chunkBytes, int elementBytes) {
        return (int) Math.max(1, Math.min(Math.max(n, 1), chunkBytes / elementBytes));
    }

    private static void check(int hostLength, int hostOff, int n, NDArray t, DataType type, long tOff, long chunkBytes) {
        if (t.getDataType() != type || t.getShape().dimension() != 1) {
            throw new IllegalArgumentException("expected a 1-d " + type + " tensor, got " + t.getDataType() + " "
                    + t.getShape());
        }
        if (n < 0 || hostOff < 0 || hostOff > hostLength - n) {
            throw new IllegalArgumentException("host range [" + hostOff + ", " + ((long) hostOff + n)
                    + ") does not fit an array of " + hostLength);
        }
        if (tOff < 0 || tOff > t.size() - n) {
            throw new IllegalArgumentException("tensor range [" + tOff + ", " + (tOff + n)
                    + ") does not fit a tensor of " + t.size());
        }
        if (chunkBytes < 1 || chunkBytes > MAX_CHUNK_BYTES) {
            throw new IllegalArgumentException("chunkBytes must be in [1, " + MAX_CHUNK_BYTES + "]: " + chunkBytes);
        }
    }
}
