package dev.dreamcluster.worker.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.index.NDIndex;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.nio.ByteBuffer;

/**
 * The raw address of a libtorch tensor's data, on any device, for NCCL. DJL's public
 * {@code toByteBuffer(true)} cannot give it: for a non-CPU tensor it first copies to the host
 * (JniUtils.getByteBuffer checks the device), so its address would be a host copy's. The JNI it
 * then calls, {@code torchDirectByteBuffer}, is {@code NewDirectByteBuffer(tensor.data_ptr(), nbytes)}
 * with no device check: called on the tensor itself (package-private in DJL 0.36, reached by
 * reflection) its address is the device pointer. The buffer is never read from Java. A direct
 * buffer holds at most 2 GiB, so the address is taken of a one-element view at {@code element}.
 */
public final class DeviceAddress {
    private static final Object LIB;
    private static final Method DIRECT;

    static {
        try {
            Class<?> lib = Class.forName("ai.djl.pytorch.jni.PyTorchLibrary");
            Field f = lib.getDeclaredField("LIB");
            f.setAccessible(true);
            LIB = f.get(null);
            DIRECT = lib.getDeclaredMethod("torchDirectByteBuffer", long.class);
            DIRECT.setAccessible(true);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError("DJL's PyTorchLibrary.torchDirectByteBuffer(long) is not there: " + e);
        }
    }

    private DeviceAddress() {}

    /** A direct buffer over element {@code element} of contiguous 1-d {@code flat}, aliasing its memory. */
    public static ByteBuffer alias(NDArray flat, long element) {
        if (flat.getShape().dimension() != 1) {
            throw new IllegalArgumentException("a flat (1-d) tensor is needed, got " + flat.getShape());
        }
        try (NDArray view = flat.get(new NDIndex(element + ":" + (element + 1)))) {
            long handle = ((ai.djl.pytorch.engine.PtNDArray) view).getHandle();
            return ((ByteBuffer) DIRECT.invoke(LIB, handle)).order(java.nio.ByteOrder.nativeOrder());
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("torchDirectByteBuffer failed", e);
        }
    }

    /** The address of element {@code element} of contiguous 1-d {@code flat} (a device pointer for a CUDA tensor). */
    public static long of(NDArray flat, long element) {
        try (org.bytedeco.javacpp.Pointer p = new org.bytedeco.javacpp.Pointer(alias(flat, element))) {
            return p.address();
        }
    }
}
