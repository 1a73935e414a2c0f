package dev.dreamcluster.config;

import java.util.List;

/**
 * Which parts of the CLIP text encoder are frozen (spec section 6), resolved against the model's
 * layer count. Layer {@code i} owns every parameter named {@code text_model.encoder.layers.{i}.*}.
 *
 * @param frozenLayers ascending layer indices
 */
public record TextEncoderFreezing(
        int numLayers, boolean embeddingsFrozen, List<Integer> frozenLayers, boolean finalLayerNormFrozen) {

    public TextEncoderFreezing {
        if (numLayers < 1) {
            throw new IllegalArgumentException("numLayers must be >= 1, got " + numLayers);
        }
        frozenLayers = List.copyOf(frozenLayers);
        int prev = -1;
        for (int i : frozenLayers) {
            if (i <= prev || i >= numLayers) {
                throw new IllegalArgumentException("frozen layers must be ascending in [0, " + numLayers + "): " + frozenLayers);
            }
            prev = i;
        }
    }

    /** Everything frozen: the text encoder is not trained at all. */
    public static TextEncoderFreezing all(int numLayers) {
        return new TextEncoderFreezing(numLayers, true, range(0, numLayers), true);
    }

    static List<Integer> range(int from, int to) {
        return java.util.stream.IntStream.range(from, to).boxed().toList();
    }
}
