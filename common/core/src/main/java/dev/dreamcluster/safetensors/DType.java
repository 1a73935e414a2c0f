package dev.dreamcluster.safetensors;

/** The element types DreamCluster reads and writes; safetensors' own names. */
public enum DType {
    F32(4),
    F16(2),
    BF16(2);

    public final int bytes;

    DType(int bytes) {
        this.bytes = bytes;
    }

    /** The dtype named by a safetensors header, or null if DreamCluster does not read it. */
    public static DType parse(String s) {
        for (DType d : values()) {
            if (d.name().equals(s)) {
                return d;
            }
        }
        return null;
    }
}
