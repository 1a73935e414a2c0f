package dev.dreamcluster.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dreamcluster.diffusion.DdpmScheduler;
import dev.dreamcluster.freeze.Component;
import dev.dreamcluster.safetensors.DType;
import dev.dreamcluster.safetensors.SafetensorsFile;
import dev.dreamcluster.safetensors.TensorInfo;
import dev.dreamcluster.tokenizer.ClipTokenizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Writing, reading and checking diffusers folders. */
class DiffusersFolderTest {
    static void writeTiny(Path dir, DType dtype) {
        Presets p = Presets.TINY;
        DiffusersFolder.write(dir, p.unet, p.textEncoder, p.vae, DdpmScheduler.stableDiffusion(DdpmScheduler.Prediction.EPSILON),
                false, dtype, DiffusersFolder.randomInit(7, p.unet, p.textEncoder, p.vae), null);
    }

    @Test
    void shouldWriteAFolderThatReadsBackAndMatchesItsConfigs(@TempDir Path tmp) {
        Path dir = tmp.resolve("tiny");
        writeTiny(dir, DType.F32);
        DiffusersFolder f = DiffusersFolder.read(dir);
        assertEquals(Presets.TINY.unet, f.unet());
        assertEquals(Presets.TINY.textEncoder, f.textEncoder());
        assertEquals(Presets.TINY.vae, f.vae());
        for (Component c : Component.values()) {
            SafetensorsFile st = SafetensorsFile.open(DiffusersFolder.weightsFile(dir, c));
            Map<String, TensorInfo> t = f.checkedTensors(c, st);
            assertEquals(f.manifest(c).size(), t.size());
        }
        assertFalse(Files.exists(tmp.resolve("tiny.tmp-" + ProcessHandle.current().pid())));
        ClipTokenizer tok = ClipTokenizer.load(dir.resolve("tokenizer"));
        assertEquals(Presets.TINY.textEncoder.vocabSize(), tok.vocabSize());
        float[] norm = SafetensorsFile.open(DiffusersFolder.weightsFile(dir, Component.UNET)).readFloats("conv_norm_out.weight");
        assertEquals(1f, norm[0]);
    }

    @Test
    void shouldInitialiseReproduciblyPerSeed(@TempDir Path tmp) {
        writeTiny(tmp.resolve("a"), DType.F32);
        writeTiny(tmp.resolve("b"), DType.F32);
        String name = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight";
        assertArrayEquals(SafetensorsFile.open(DiffusersFolder.weightsFile(tmp.resolve("a"), Component.UNET)).readFloats(name),
                SafetensorsFile.open(DiffusersFolder.weightsFile(tmp.resolve("b"), Component.UNET)).readFloats(name));
    }

    @Test
    void shouldNameMissingUnexpectedAndMisShapedTensors(@TempDir Path tmp) {
        Path dir = tmp.resolve("tiny");
        writeTiny(dir, DType.F16);
        DiffusersFolder f = DiffusersFolder.read(dir);
        Path te = DiffusersFolder.weightsFile(dir, Component.TEXT_ENCODER);
        SafetensorsFile st = SafetensorsFile.open(te);
        Map<String, SafetensorsFile.Entry> all = new LinkedHashMap<>();
        st.tensors().forEach((k, v) -> all.put(k, new SafetensorsFile.Entry(v.shape(), st.readFloats(k))));

        Map<String, SafetensorsFile.Entry> missing = new LinkedHashMap<>(all);
        missing.remove("text_model.final_layer_norm.bias");
        SafetensorsFile.write(te, missing, DType.F32, null);
        ModelError e1 = assertThrows(ModelError.class, () -> f.checkedTensors(Component.TEXT_ENCODER, SafetensorsFile.open(te)));
        assertTrue(e1.getMessage().contains("missing tensor text_model.final_layer_norm.bias [32]"), e1.getMessage());

        Map<String, SafetensorsFile.Entry> shaped = new LinkedHashMap<>(all);
        shaped.put("text_model.final_layer_norm.bias", new SafetensorsFile.Entry(new long[] {16}, new float[16]));
        SafetensorsFile.write(te, shaped, DType.F32, null);
        ModelError e2 = assertThrows(ModelError.class, () -> f.checkedTensors(Component.TEXT_ENCODER, SafetensorsFile.open(te)));
        assertTrue(e2.getMessage().contains("text_model.final_layer_norm.bias has shape [16], config needs [32]"), e2.getMessage());

        Map<String, SafetensorsFile.Entry> extra = new LinkedHashMap<>(all);
        extra.put("text_projection.weight", new SafetensorsFile.Entry(new long[] {2}, new float[2]));
        extra.put("text_model.embeddings.position_ids", new SafetensorsFile.Entry(new long[] {77}, new float[77]));
        SafetensorsFile.write(te, extra, DType.F32, null);
        ModelError e3 = assertThrows(ModelError.class, () -> f.checkedTensors(Component.TEXT_ENCODER, SafetensorsFile.open(te)));
        assertTrue(e3.getMessage().contains("unexpected tensor text_projection.weight [2]"), e3.getMessage());
    }

    @Test
    void shouldAcceptOldVaeAttentionNames(@TempDir Path tmp) {
        Path dir = tmp.resolve("tiny");
        writeTiny(dir, DType.F32);
        Path vae = DiffusersFolder.weightsFile(dir, Component.VAE);
        SafetensorsFile st = SafetensorsFile.open(vae);
        Map<String, SafetensorsFile.Entry> old = new LinkedHashMap<>();
        st.tensors().forEach((k, v) -> {
            String n = k.replace(".attentions.0.to_q.", ".attentions.0.query.").replace(".attentions.0.to_out.0.", ".attentions.0.proj_attn.");
            long[] shape = n.contains(".query.weight") ? new long[] {v.shape()[0], v.shape()[1], 1, 1} : v.shape();
            old.put(n, new SafetensorsFile.Entry(shape, st.readFloats(k)));
        });
        SafetensorsFile.write(vae, old, DType.F32, null);
        Map<String, TensorInfo> t = DiffusersFolder.read(dir).checkedTensors(Component.VAE, SafetensorsFile.open(vae));
        assertEquals("encoder.mid_block.attentions.0.query.weight", t.get("encoder.mid_block.attentions.0.to_q.weight").name());
    }
}
