package dev.dreamcluster.optim;

import dev.dreamcluster.optim.kernel.QuantMap;

/**
 * Elements [start, start+length) of the tensor {@code name}, which has {@code numel} elements in all.
 * A slice starts at a multiple of 256 from the tensor's start and ends at one or at the tensor's
 * end, so 8-bit blocks never straddle two workers and results do not depend on the shard count.
 */
public record TensorSlice(String name, long numel, long start, int length) {
    public TensorSlice {
        if (name == null || name.isEmpty()) {
            throw new IllegalArgumentException("tensor name is empty");
        }
        if (numel < 1 || length < 1 || start < 0 || start + length > numel) {
            throw new IllegalArgumentException(name + ": slice [" + start + ", " + (start + length)
                    + ") does not fit a tensor of " + numel);
        }
        if (start % QuantMap.BLOCK != 0 || (start + length != numel && length % QuantMap.BLOCK != 0)) {
            throw new IllegalArgumentException(name + ": slice [" + start + ", " + (start + length)
                    + ") must start and end at multiples of " + QuantMap.BLOCK + " (or the tensor's end)");
        }
    }

    /** The whole tensor as one slice. */
    public static TensorSlice whole(String name, int numel) {
        return new TensorSlice(name, numel, 0, numel);
    }

    public long end() {
        return start + length;
    }

    /** 256-element blocks this slice covers (the last may be partial). */
    public int blocks() {
        return (length + QuantMap.BLOCK - 1) / QuantMap.BLOCK;
    }
}
