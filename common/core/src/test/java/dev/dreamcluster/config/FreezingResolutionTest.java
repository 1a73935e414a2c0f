package dev.dreamcluster.config;

import static dev.dreamcluster.config.ConfigResolverTest.resolve;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.stream.IntStream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;

/** Spec section 6: freezing ranges for 12 (SD1) and 23 (SD2) layers, and every freezing error. */
class FreezingResolutionTest {

    static TextEncoderFreezing freeze(String block, int layers) {
        return resolve(null, CliFlags.NONE, "{'text_encoder_freezing': " + block + "}", layers).textEncoderFreezing();
    }

    static List<Integer> range(int from, int to) {
        return IntStream.range(from, to).boxed().toList();
    }

    @ParameterizedTest(name = "{0} with {1} layers freezes [{2}, {3})")
    @CsvSource(delimiter = ';', value = {
        "{};                                   12; 0; 0",
        "{'freeze_front_n_layers': null};      12; 0; 0",
        "{'freeze_front_n_layers': 0};         23; 0; 0",
        "{'freeze_front_n_layers': 4};         12; 0; 4",
        "{'freeze_front_n_layers': 4};         23; 0; 4",
        "{'freeze_front_n_layers': -2};        12; 0; 10",
        "{'freeze_front_n_layers': -6};        23; 0; 17",
        "{'freeze_front_n_layers': 12};        12; 0; 12",
        "{'freeze_front_n_layers': -12};       12; 0; 0",
        "{'freeze_front_n_layers': 23};        23; 0; 23",
        "{'freeze_front_n_layers': -23};       23; 0; 0",
        "{'unfreeze_last_n_layers': 2};        12; 0; 10",
        "{'unfreeze_last_n_layers': 2};        23; 0; 21",
        "{'unfreeze_last_n_layers': 12};       12; 0; 0",
        "{'unfreeze_last_n_layers': null};     12; 0; 0",
    })
    void shouldFreezeTheDocumentedLayerRanges(String block, int layers, int from, int to) {
        TextEncoderFreezing f = freeze(block, layers);
        assertEquals(range(from, to), f.frozenLayers());
        assertEquals(layers, f.numLayers());
    }

    @Test
    void shouldFreezeEmbeddingsWithAnyFrozenLayerUnlessFreezeEmbeddingsIsGiven() {
        // EveryDream2: a frozen CLIP layer freezes the embeddings too; an explicit freeze_embeddings wins
        TextEncoderFreezing f = freeze("{'freeze_front_n_layers': 4}", 12);
        assertEquals(true, f.embeddingsFrozen());
        assertEquals(false, f.finalLayerNormFrozen());
        assertEquals(false, freeze("{'freeze_front_n_layers': 4, 'freeze_embeddings': false}", 12).embeddingsFrozen());
        assertEquals(false, freeze("{'unfreeze_last_n_layers': 12}", 12).embeddingsFrozen());
        assertEquals(false, freeze("{'freeze_front_n_layers': 0}", 12).embeddingsFrozen());
        TextEncoderFreezing g = freeze("{'freeze_embeddings': true, 'freeze_final_layer_norm': true}", 12);
        assertEquals(true, g.embeddingsFrozen());
        assertEquals(true, g.finalLayerNormFrozen());
        assertEquals(List.of(), g.frozenLayers());
    }

    @Test
    void shouldMatchTheShippedSd21Block() {
        TextEncoderFreezing f = freeze("{'freeze_embeddings': true, 'freeze_front_n_layers': -6, 'freeze_final_layer_norm': false}", 23);
        assertEquals(range(0, 17), f.frozenLayers());
        assertTrue(f.embeddingsFrozen());
    }

    @ParameterizedTest(name = "{0} with {1} layers is rejected")
    @CsvSource(delimiter = ';', value = {
        "{'freeze_front_n_layers': 13};                                12; freeze_front_n_layers: 13; 12 layers",
        "{'freeze_front_n_layers': -13};                               12; freeze_front_n_layers: -13; 12 layers",
        "{'freeze_front_n_layers': 24};                                23; freeze_front_n_layers: 24; 23 layers",
        "{'unfreeze_last_n_layers': 0};                                12; unfreeze_last_n_layers: 0; 1..12",
        "{'unfreeze_last_n_layers': -1};                               12; unfreeze_last_n_layers: -1; 1..12",
        "{'unfreeze_last_n_layers': 13};                               12; unfreeze_last_n_layers: 13; 1..12",
        "{'freeze_front_n_layers': 2, 'unfreeze_last_n_layers': 3};    12; unfreeze_last_n_layers; only one",
        "{'freeze_front_n_layers': 1.5};                               12; freeze_front_n_layers: 1.5; 12 layers",
        "{'freeze_embeddings': 'yes'};                                 12; freeze_embeddings: \"yes\"; true or false",
    })
    void shouldRejectBadFreezingWithTheLayerCount(String block, int layers, String where, String allowed) {
        ConfigError e = assertThrows(ConfigError.class, () -> freeze(block, layers));
        assertTrue(e.getMessage().startsWith("opt.json at text_encoder_freezing."), e.getMessage());
        assertTrue(e.getMessage().contains(where), e.getMessage());
        assertTrue(e.getMessage().contains(allowed), e.getMessage());
    }
}
