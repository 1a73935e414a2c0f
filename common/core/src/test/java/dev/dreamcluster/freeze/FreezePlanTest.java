package dev.dreamcluster.freeze;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dreamcluster.config.TextEncoderFreezing;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/** FreezePlan over the full Hugging Face CLIPTextModel name lists of SD1 (12 layers) and SD2 (23). */
class FreezePlanTest {
    static final List<String> LAYER_TENSORS = List.of(
            "self_attn.k_proj.weight", "self_attn.k_proj.bias", "self_attn.v_proj.weight", "self_attn.v_proj.bias",
            "self_attn.q_proj.weight", "self_attn.q_proj.bias", "self_attn.out_proj.weight", "self_attn.out_proj.bias",
            "layer_norm1.weight", "layer_norm1.bias", "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias",
            "layer_norm2.weight", "layer_norm2.bias");

    /** Every parameter of a CLIPTextModel with {@code layers} encoder layers, in state_dict order. */
    static List<String> clipNames(int layers) {
        List<String> names = new ArrayList<>();
        names.add("text_model.embeddings.token_embedding.weight");
        names.add("text_model.embeddings.position_embedding.weight");
        for (int i = 0; i < layers; i++) {
            for (String t : LAYER_TENSORS) {
                names.add("text_model.encoder.layers." + i + "." + t);
            }
        }
        names.add("text_model.final_layer_norm.weight");
        names.add("text_model.final_layer_norm.bias");
        return names;
    }

    static long trainable(FreezePlan plan, List<String> names) {
        return names.stream().filter(n -> plan.isTrainable(Component.TEXT_ENCODER, n)).count();
    }

    @Test
    void shouldHaveTheRealTensorCounts() {
        assertEquals(196, clipNames(12).size());
        assertEquals(372, clipNames(23).size());
    }

    @Test
    void shouldTrainEverythingWhenNothingIsFrozen() {
        FreezePlan plan = new FreezePlan(true, true, new TextEncoderFreezing(12, false, List.of(), false));
        assertEquals(196, trainable(plan, clipNames(12)));
    }

    @Test
    void shouldFreezeSd1FrontLayersEmbeddingsAndFinalNorm() {
        FreezePlan plan = new FreezePlan(true, true,
                new TextEncoderFreezing(12, true, IntStream.range(0, 4).boxed().toList(), true));
        List<String> names = clipNames(12);
        assertEquals(196 - 2 - 4 * 16 - 2, trainable(plan, names));
        assertFalse(plan.isTrainable(Component.TEXT_ENCODER, "text_model.encoder.layers.3.mlp.fc2.bias"));
        assertTrue(plan.isTrainable(Component.TEXT_ENCODER, "text_model.encoder.layers.4.self_attn.q_proj.weight"));
        assertFalse(plan.isTrainable(Component.TEXT_ENCODER, "text_model.embeddings.position_embedding.weight"));
        assertFalse(plan.isTrainable(Component.TEXT_ENCODER, "text_model.final_layer_norm.bias"));
    }

    @Test
    void shouldFreezeSd2AllButLastSixLayers() {
        FreezePlan plan = new FreezePlan(true, true,
                new TextEncoderFreezing(23, true, IntStream.range(0, 17).boxed().toList(), false));
        List<String> names = clipNames(23);
        assertEquals(6 * 16 + 2, trainable(plan, names));
        assertFalse(plan.isTrainable(Component.TEXT_ENCODER, "text_model.encoder.layers.16.layer_norm2.weight"));
        assertTrue(plan.isTrainable(Component.TEXT_ENCODER, "text_model.encoder.layers.17.layer_norm2.weight"));
        assertTrue(plan.isTrainable(Component.TEXT_ENCODER, "text_model.encoder.layers.22.mlp.fc1.weight"));
        // layer 1 must not be confused with layers 10..19
        assertFalse(plan.isTrainable(Component.TEXT_ENCODER, "text_model.encoder.layers.1.mlp.fc1.weight"));
    }

    @Test
    void shouldFreezeDisabledComponentsAndTheVae() {
        FreezePlan plan = new FreezePlan(false, false, TextEncoderFreezing.all(12));
        assertEquals(0, trainable(plan, clipNames(12)));
        assertFalse(plan.isTrainable(Component.UNET, "conv_in.weight"));
        assertFalse(plan.isTrainable(Component.VAE, "encoder.conv_in.weight"));
        assertTrue(new FreezePlan(true, false, TextEncoderFreezing.all(12)).isTrainable(Component.UNET, "conv_in.weight"));
    }

    @Test
    void shouldRejectNamesOutsideTheModel() {
        FreezePlan plan = new FreezePlan(true, true, new TextEncoderFreezing(12, false, List.of(), false));
        assertThrows(IllegalArgumentException.class, () -> plan.isTrainable(Component.TEXT_ENCODER, "text_model.encoder.layers.12.mlp.fc1.weight"));
        assertThrows(IllegalArgumentException.class, () -> plan.isTrainable(Component.TEXT_ENCODER, "text_projection.weight"));
    }
}
