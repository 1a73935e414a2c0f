package dev.dreamcluster.model;

import java.util.Arrays;

/** One named parameter tensor: its Hugging Face / diffusers name and shape. */
public record ParamSpec(String name, long[] shape) {
    public ParamSpec {
        shape = shape.clone();
        for (long d : shape) {
            if (d < 1) {
                throw new IllegalArgumentException(name + ": bad dimension in " + Arrays.toString(shape));
            }
        }
    }

    public long numel() {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return n;
    }

    /** {@code [d0, d1, ...]} as model-info prints it. */
    public String shapeString() {
        return Arrays.toString(shape);
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof ParamSpec p && p.name.equals(name) && Arrays.equals(p.shape, shape);
    }

    @Override
    public int hashCode() {
        return name.hashCode() * 31 + Arrays.hashCode(shape);
    }

    @Override
    public String toString() {
        return name + shapeString();
    }
}
