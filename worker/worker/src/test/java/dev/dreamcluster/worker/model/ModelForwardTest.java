package dev.dreamcluster.worker.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import dev.dreamcluster.freeze.Component;
import dev.dreamcluster.model.DiffusersFolder;
import dev.dreamcluster.model.Presets;
import dev.dreamcluster.safetensors.DType;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The tiny preset end to end on DJL: shapes, finiteness, and gradients only where trainable. */
class ModelForwardTest {
    @TempDir
    static Path tmp;
    static DiffusersFolder folder;

    @BeforeAll
    static void writeModel() {
        Path dir = tmp.resolve("tiny");
        DiffusersFolder.writeRandom(dir, Presets.TINY, 1, DType.F32);
        folder = DiffusersFolder.read(dir);
    }

    static boolean finite(NDArray a) {
        for (float f : a.toFloatArray()) {
            if (!Float.isFinite(f)) {
                return false;
            }
        }
        return true;
    }

    @Test
    void shouldRunEveryComponentWithTheRightShapes() {
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                ModelWeights te = ModelWeights.load(m, folder, Component.TEXT_ENCODER, Device.cpu(), n -> false);
                ModelWeights unet = ModelWeights.load(m, folder, Component.UNET, Device.cpu(), n -> false);
                ModelWeights vae = ModelWeights.load(m, folder, Component.VAE, Device.cpu(), n -> false)) {
            NDArray ids = m.create(new long[2 * 77], new Shape(2, 77)).add(5).toType(DataType.INT64, false);
            NDArray states = new ClipTextModel(folder.textEncoder(), te, new Ops()).forward(ids, 1);
            assertEquals(new Shape(2, 77, 32), states.getShape());
            assertTrue(finite(states));
            NDArray skip2 = new ClipTextModel(folder.textEncoder(), te, new Ops()).forward(ids, 2);
            assertEquals(new Shape(2, 77, 32), skip2.getShape());
            NDArray images = m.randomUniform(-1, 1, new Shape(2, 3, 32, 32));
            VaeModel v = new VaeModel(folder.vae(), vae, new Ops());
            NDList dist = v.encode(images);
            assertEquals(new Shape(2, 4, 8, 8), dist.get(0).getShape());
            NDArray latents = v.sampleScaled(images, m.randomNormal(new Shape(2, 4, 8, 8)));
            assertEquals(new Shape(2, 3, 32, 32), v.decode(latents).getShape());
            NDArray out = new UNetModel(folder.unet(), unet, new Ops()).forward(latents, new int[] {10, 900}, states);
            assertEquals(new Shape(2, 4, 8, 8), out.getShape());
            assertTrue(finite(out));
        }
    }

    @Test
    void shouldProduceGradientsOnlyForTrainableTensors() {
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                ModelWeights te = ModelWeights.load(m, folder, Component.TEXT_ENCODER, Device.cpu(),
                        n -> n.startsWith("text_model.encoder.layers.3."));
                ModelWeights unet = ModelWeights.load(m, folder, Component.UNET, Device.cpu(), n -> true)) {
            NDArray ids = m.create(new long[77], new Shape(1, 77)).add(7).toType(DataType.INT64, false);
            NDArray latents = m.randomNormal(new Shape(1, 4, 16, 16));
            NDArray noise = m.randomNormal(new Shape(1, 4, 16, 16));
            Ops ops = new Ops();
            ClipTextModel clip = new ClipTextModel(folder.textEncoder(), te, ops);
            UNetModel u = new UNetModel(folder.unet(), unet, ops);
            dev.dreamcluster.worker.check.StartupCheck.run(ops, m, DataType.FLOAT32,
                    () -> u.forward(latents, new int[] {500}, clip.forward(ids, 1)));
            try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                NDArray states = clip.forward(ids, 1);
                NDArray pred = u.forward(latents, new int[] {500}, states);
                gc.backward(pred.sub(noise).square().mean());
            }
            NDArray g = unet.get("down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight").getGradient();
            assertTrue(g.abs().sum().getFloat() > 0, "cross-attention key gets a gradient");
            NDArray gt = te.get("text_model.encoder.layers.3.mlp.fc1.weight").getGradient();
            assertTrue(gt.abs().sum().getFloat() > 0, "trainable text layer gets a gradient");
            assertEquals(false, te.get("text_model.encoder.layers.0.mlp.fc1.weight").hasGradient());
            assertNull(null);
        }
    }
}
