package dev.dreamcluster.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * EveryDream2's stock optimizer.json and optimizerSD21.json (copied verbatim from
 * victorchall/EveryDream2trainer 5098db8 into test resources everydream2/) load and resolve to the
 * values pinned here (spec sections 2, 3 and 6).
 */
class EveryDream2StockConfigTest {
    @TempDir
    Path tmp;

    Path copy(String name) throws IOException {
        try (InputStream in = getClass().getResourceAsStream("/everydream2/" + name)) {
            Path p = tmp.resolve(name);
            Files.copy(in, p);
            return p;
        }
    }

    ResolvedTrainingConfig load(String optimizer, int layers) throws IOException {
        copy(optimizer);
        Path train = tmp.resolve("t.json");
        Files.writeString(train, "{\"optimizer_config\": \"" + optimizer + "\"}");
        return ConfigResolver.load(train, CliFlags.NONE, layers);
    }

    @Test
    void stockOptimizerJsonResolves() throws IOException {
        ResolvedTrainingConfig c = load("optimizer.json", 12);
        ComponentConfig u = c.unet();
        assertEquals(OptimizerName.ADAMW8BIT, u.optimizer());
        assertEquals(1e-6, u.lr());
        assertEquals(0.9, u.beta1());
        assertEquals(0.999, u.beta2());
        assertEquals(1e-8, u.epsilon());
        assertEquals(0.01, u.weightDecay());
        assertEquals(LrSchedulerName.CONSTANT, u.lrScheduler());
        assertNull(u.lrWarmupSteps());
        assertNull(u.lrDecaySteps());
        ComponentConfig t = c.textEncoder();
        assertEquals(OptimizerName.ADAMW8BIT, t.optimizer());
        assertEquals(5e-7, t.lr());
        assertEquals(LrSchedulerName.COSINE, t.lrScheduler());
        assertEquals(0.01, t.weightDecay());
        TextEncoderFreezing f = c.textEncoderFreezing();
        assertEquals(List.of(), f.frozenLayers());
        assertFalse(f.embeddingsFrozen());
        assertFalse(f.finalLayerNormFrozen());
        // apply_grad_scaler_step_tweaks is accepted with exactly one note naming it
        assertEquals(1, c.warnings().stream().filter(w -> w.contains("apply_grad_scaler_step_tweaks")).count(), c.warnings().toString());
    }

    @Test
    void stockOptimizerSd21JsonFreezesTheEmbeddingsAndAllButTwoLayers() throws IOException {
        ResolvedTrainingConfig c = load("optimizerSD21.json", 23);
        assertEquals(1e-6, c.unet().lr());
        assertEquals(3e-7, c.textEncoder().lr());
        assertEquals(LrSchedulerName.CONSTANT, c.textEncoder().lrScheduler());
        TextEncoderFreezing f = c.textEncoderFreezing();
        assertEquals(IntStream.range(0, 21).boxed().toList(), f.frozenLayers());
        assertTrue(f.embeddingsFrozen(), "EveryDream2 freezes the embeddings when any layer is frozen");
        assertFalse(f.finalLayerNormFrozen());
        assertEquals(List.of(), c.warnings());
    }

    @Test
    void stockTrainSd21WithItsOptimizerResolves() throws IOException {
        copy("optimizerSD21.json");
        Path train = copy("trainSD21.json");
        ResolvedTrainingConfig c = ConfigResolver.load(train, CliFlags.NONE, 23);
        assertEquals(2e-6, c.unet().lr()); // trainSD21.json's lr beats base.lr
        assertEquals(3e-7, c.textEncoder().lr()); // the explicit TE lr survives (spec section 8)
        assertTrue(c.textEncoderFreezing().embeddingsFrozen());
    }

    @Test
    void gradScalerAndLogGradNormKeysMustBeBooleans() {
        ConfigError e = assertThrows(ConfigError.class,
                () -> ConfigResolverTest.resolve(null, "{'apply_grad_scaler_step_tweaks': 3}"));
        assertTrue(e.getMessage().contains("opt.json at apply_grad_scaler_step_tweaks: 3"), e.getMessage());
        ResolvedTrainingConfig c = ConfigResolverTest.resolve(null, "{'log_grad_norm': false}");
        assertEquals(1, c.warnings().stream().filter(w -> w.contains("log_grad_norm (false) has no effect")).count());
    }
}
