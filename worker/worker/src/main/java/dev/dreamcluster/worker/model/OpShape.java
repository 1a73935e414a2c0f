package dev.dreamcluster.worker.model;

import ai.djl.ndarray.types.Shape;

/**
 * One model operation at one set of shapes: the unit the startup check measures against float64
 * and the key of the per-shape convolution choice. Shapes are the run's real ones (batch included),
 * recorded by {@link Ops} while a forward pass is traced.
 */
public sealed interface OpShape {
    /** A stable one-line form: the cache key and the doctor table's shape column. */
    String key();

    record Conv(Shape x, Shape w, boolean bias, int stride, int pad) implements OpShape {
        @Override
        public String key() {
            return "conv x" + x + " w" + w + " stride " + stride + " pad " + pad + (bias ? "" : " no-bias");
        }
    }

    record Linear(Shape x, Shape w, boolean bias) implements OpShape {
        @Override
        public String key() {
            return "linear x" + x + " w" + w + (bias ? "" : " no-bias");
        }
    }

    record GroupNorm(Shape x, int groups, float eps) implements OpShape {
        @Override
        public String key() {
            return "group_norm x" + x + " groups " + groups + " eps " + eps;
        }
    }

    record LayerNorm(Shape x, float eps) implements OpShape {
        @Override
        public String key() {
            return "layer_norm x" + x + " eps " + eps;
        }
    }

    record Attention(Shape q, Shape k, int heads, boolean masked) implements OpShape {
        @Override
        public String key() {
            return "attention q" + q + " k" + k + " heads " + heads + (masked ? " causal-mask" : "");
        }
    }

    /** Element-wise activations: silu, gelu (erf), quick_gelu, and the GEGLU gate value * gelu(gate). */
    record Activation(String kind, Shape x) implements OpShape {
        @Override
        public String key() {
            return kind + " x" + x;
        }
    }
}
