package dev.dreamcluster.collective;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The ring's reduction with the Vector API: a received frame is added into the float array straight
 * from the direct buffer the socket filled (one read of the frame instead of a copy into a scratch
 * array and a second read). Float addition is lane-wise IEEE, so the sums are the scalar loop's bits.
 * Loaded only when {@link dev.dreamcluster.optim.kernel.Simd#ENABLED}: it links against the incubator module.
 */
final class RingVectors {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

    private RingVectors() {}

    /** {@code data[off + i] += frame's float i} for i < k; the frame's floats start at position 0 of {@code buf}, little-endian. */
    static void addInto(float[] data, int off, ByteBuffer buf, int k) {
        final int up = S.loopBound(k);
        int i = 0;
        for (; i < up; i += S.length()) {
            FloatVector.fromArray(S, data, off + i).add(FloatVector.fromByteBuffer(S, buf, 4 * i, ByteOrder.LITTLE_ENDIAN))
                    .intoArray(data, off + i);
        }
        for (; i < k; i++) {
            data[off + i] += buf.getFloat(4 * i);
        }
    }
}
