package dev.dreamcluster.worker.example;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.dreamcluster.freeze.Component;
import dev.dreamcluster.model.DiffusersFolder;
import dev.dreamcluster.model.Presets;
import dev.dreamcluster.safetensors.DType;
import dev.dreamcluster.worker.data.DatasetScanner;
import dev.dreamcluster.worker.data.ImageItem;
import dev.dreamcluster.worker.data.ImageLoader;
import dev.dreamcluster.worker.data.SyntheticDataset;
import dev.dreamcluster.worker.model.ModelWeights;
import dev.dreamcluster.worker.model.Ops;
import dev.dreamcluster.worker.model.Tensors;
import dev.dreamcluster.worker.model.VaeModel;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The tiny example's model: train-vae's loop runs and writes a VAE folder the example model takes in,
 * and the shipped examples/tiny/shapes-vae is a real autoencoder of the shapes (its reconstructions
 * pass the colour check). A few seconds: a 3-step VAE run at 16 px and one 8-image forward.
 */
class ExampleModelTest {
    static final Path SHIPPED = Path.of("..", "..", "examples", "tiny", ExampleModel.VAE_FOLDER);

    @Test
    void trainVaeShouldWriteAFolderTheExampleModelTakes(@TempDir Path tmp) throws Exception {
        SyntheticDataset.write(tmp.resolve("data"), 6, 16, 2);
        VaeTrainer.Report r = VaeTrainer.train(tmp.resolve("data"), Presets.TINY_SHAPES.vae,
                new VaeTrainer.Options(3, 2, 1e-3, 1e-4, 16, 0), tmp.resolve("vae"), line -> {});
        assertTrue(Double.isFinite(r.firstLoss()) && Double.isFinite(r.reconstructionMse()) && r.scalingFactor() > 0, r.toString());
        assertNull(ExampleModel.shippedVae(tmp.resolve("tiny-model")));
        Files.move(tmp.resolve("vae"), tmp.resolve(ExampleModel.VAE_FOLDER));
        Path vae = ExampleModel.shippedVae(tmp.resolve("tiny-model"));
        assertNotNull(vae);
        ExampleModel.write(tmp.resolve("tiny-model"), Presets.TINY_SHAPES, vae, 0, DType.F32);
        DiffusersFolder f = DiffusersFolder.read(tmp.resolve("tiny-model"));
        assertEquals(Presets.TINY_SHAPES.unet, f.unet());
        assertEquals(r.scalingFactor(), f.vae().scalingFactor());
        assertEquals(16, f.vae().sampleSize());
    }

    @Test
    void theShippedVaeShouldReconstructTheShapes(@TempDir Path tmp) throws Exception {
        ExampleModel.write(tmp.resolve("tiny-model"), Presets.TINY_SHAPES, SHIPPED, 0, DType.F32);
        DiffusersFolder f = DiffusersFolder.read(tmp.resolve("tiny-model"));
        // the preset names the shipped VAE's shape and scaling factor, so a model written without the folder has the same config
        assertEquals(Presets.TINY_SHAPES.vae, f.vae());
        SyntheticDataset.write(tmp.resolve("data"), 24, 64, 11);
        List<ImageItem> items = DatasetScanner.scan(tmp.resolve("data"), w -> {}).stream()
                .filter(i -> i.width() == i.height()).limit(8).toList();
        int n = items.size();
        float[] px = new float[n * 3 * 64 * 64];
        for (int i = 0; i < n; i++) {
            ImageLoader.load(items.get(i), 64, 64, px, i * 3 * 64 * 64);
        }
        float[] rec;
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                ModelWeights w = ModelWeights.load(m, f, Component.VAE, Device.cpu(), x -> false)) {
            VaeModel vae = new VaeModel(f.vae(), w, new Ops());
            NDArray x = Tensors.of(m, px, new Shape(n, 3, 64, 64));
            rec = Tensors.read(vae.decode(vae.encode(x).get(0)));
        }
        for (int i = 0; i < n; i++) {
            BufferedImage img = new BufferedImage(64, 64, BufferedImage.TYPE_INT_RGB);
            for (int y = 0; y < 64; y++) {
                for (int xx = 0; xx < 64; xx++) {
                    int o = i * 3 * 4096 + y * 64 + xx;
                    img.setRGB(xx, y, (byteOf(rec[o]) << 16) | (byteOf(rec[o + 4096]) << 8) | byteOf(rec[o + 8192]));
                }
            }
            Path png = tmp.resolve("rec-" + i + ".png");
            ImageIO.write(img, "png", png.toFile());
            SampleCheck.Result r = SampleCheck.checkImage(png, SampleCheck.Caption.parse(items.get(i).caption()));
            assertTrue(r.colorsMatch(), r.line());
        }
    }

    private static int byteOf(float v) {
        return (int) Math.rint(Math.min(1f, Math.max(0f, v / 2f + 0.5f)) * 255f);
    }
}
