package dev.dreamcluster.model.ldm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.config.Json;
import dev.dreamcluster.diffusion.DdpmScheduler;
import dev.dreamcluster.freeze.Component;
import dev.dreamcluster.model.ClipTextConfig;
import dev.dreamcluster.model.DiffusersFolder;
import dev.dreamcluster.model.ModelError;
import dev.dreamcluster.model.ParamSpec;
import dev.dreamcluster.model.Presets;
import dev.dreamcluster.model.TensorSource;
import dev.dreamcluster.model.UNetConfig;
import dev.dreamcluster.safetensors.DType;
import dev.dreamcluster.safetensors.SafetensorsFile;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LdmCheckpointTest {
    @TempDir
    Path tmp;

    static DiffusersFolder layout(Presets p) {
        return new DiffusersFolder(Path.of("."), p.unet, p.textEncoder, p.vae, DdpmScheduler.stableDiffusion(DdpmScheduler.Prediction.EPSILON));
    }

    /** The tiny preset with SD2's pieces: gelu (OpenCLIP) text encoder, linear transformer projections. */
    static DiffusersFolder tinySd2() {
        Presets t = Presets.TINY;
        UNetConfig u = t.unet;
        UNetConfig linear = new UNetConfig(u.inChannels(), u.outChannels(), u.sampleSize(), u.blockOutChannels(), u.layersPerBlock(),
                u.downBlockTypes(), u.upBlockTypes(), u.attentionHeadDim(), u.crossAttentionDim(), true, u.normNumGroups(), u.normEps(),
                u.flipSinToCos(), u.freqShift());
        ClipTextConfig c = t.textEncoder;
        ClipTextConfig gelu = new ClipTextConfig(c.vocabSize(), c.hiddenSize(), c.numHiddenLayers(), c.numAttentionHeads(),
                c.intermediateSize(), c.maxPositionEmbeddings(), "gelu", c.layerNormEps());
        return new DiffusersFolder(Path.of("."), linear, gelu, t.vae, DdpmScheduler.stableDiffusion(DdpmScheduler.Prediction.V_PREDICTION));
    }

    /** Names and shapes of tensors in the real SD 1.5 / 2.1 single files (v1-5-pruned, v2-1_768-ema-pruned). */
    @Test
    void sd15NamesAndShapesMatchTheOriginalCheckpoint() {
        Map<String, long[]> m = ldm(layout(Presets.SD15));
        assertEquals(686 + 196 + 248, m.size(), "UNet 686, CLIP 196, VAE 248 tensors, as in v1-5-pruned.safetensors");
        expect(m, "model.diffusion_model.time_embed.0.weight", 1280, 320);
        expect(m, "model.diffusion_model.input_blocks.0.0.weight", 320, 4, 3, 3);
        expect(m, "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight", 320, 768);
        expect(m, "model.diffusion_model.input_blocks.1.1.proj_in.weight", 320, 320, 1, 1);
        expect(m, "model.diffusion_model.input_blocks.3.0.op.weight", 320, 320, 3, 3);
        expect(m, "model.diffusion_model.input_blocks.4.0.skip_connection.weight", 640, 320, 1, 1);
        expect(m, "model.diffusion_model.input_blocks.4.0.emb_layers.1.weight", 640, 1280);
        expect(m, "model.diffusion_model.input_blocks.11.0.out_layers.3.weight", 1280, 1280, 3, 3);
        expect(m, "model.diffusion_model.middle_block.1.proj_out.weight", 1280, 1280, 1, 1);
        expect(m, "model.diffusion_model.middle_block.2.in_layers.0.weight", 1280);
        expect(m, "model.diffusion_model.output_blocks.0.0.skip_connection.weight", 1280, 2560, 1, 1);
        expect(m, "model.diffusion_model.output_blocks.2.1.conv.weight", 1280, 1280, 3, 3);
        expect(m, "model.diffusion_model.output_blocks.5.2.conv.weight", 1280, 1280, 3, 3);
        expect(m, "model.diffusion_model.output_blocks.8.2.conv.weight", 640, 640, 3, 3);
        expect(m, "model.diffusion_model.output_blocks.11.1.transformer_blocks.0.ff.net.0.proj.weight", 2560, 320);
        expect(m, "model.diffusion_model.out.2.weight", 4, 320, 3, 3);
        expect(m, "first_stage_model.encoder.down.1.block.0.nin_shortcut.weight", 256, 128, 1, 1);
        expect(m, "first_stage_model.encoder.down.0.downsample.conv.weight", 128, 128, 3, 3);
        expect(m, "first_stage_model.encoder.mid.attn_1.q.weight", 512, 512, 1, 1);
        expect(m, "first_stage_model.encoder.mid.block_2.conv2.weight", 512, 512, 3, 3);
        expect(m, "first_stage_model.encoder.conv_out.weight", 8, 512, 3, 3);
        expect(m, "first_stage_model.decoder.up.1.block.0.nin_shortcut.weight", 256, 512, 1, 1);
        expect(m, "first_stage_model.decoder.up.3.upsample.conv.weight", 512, 512, 3, 3);
        expect(m, "first_stage_model.decoder.up.0.block.2.conv2.weight", 128, 128, 3, 3);
        expect(m, "first_stage_model.decoder.mid.attn_1.proj_out.bias", 512);
        expect(m, "first_stage_model.decoder.norm_out.weight", 128);
        expect(m, "first_stage_model.quant_conv.weight", 8, 8, 1, 1);
        expect(m, "first_stage_model.post_quant_conv.weight", 4, 4, 1, 1);
        expect(m, "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight", 49408, 768);
        expect(m, "cond_stage_model.transformer.text_model.encoder.layers.11.mlp.fc2.weight", 768, 3072);
        expect(m, "cond_stage_model.transformer.text_model.final_layer_norm.bias", 768);
    }

    @Test
    void sd21NamesAndShapesMatchTheOriginalCheckpoint() {
        Map<String, long[]> m = ldm(layout(Presets.SD21));
        // OpenCLIP: 23 resblocks x 12 tensors + token/positional embedding + ln_final (resblock 23 and the projection are not used)
        assertEquals(686 + 23 * 12 + 4 + 248, m.size());
        expect(m, "cond_stage_model.model.token_embedding.weight", 49408, 1024);
        expect(m, "cond_stage_model.model.positional_embedding", 77, 1024);
        expect(m, "cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight", 3072, 1024);
        expect(m, "cond_stage_model.model.transformer.resblocks.22.attn.in_proj_bias", 3072);
        expect(m, "cond_stage_model.model.transformer.resblocks.22.attn.out_proj.weight", 1024, 1024);
        expect(m, "cond_stage_model.model.transformer.resblocks.5.mlp.c_fc.weight", 4096, 1024);
        expect(m, "cond_stage_model.model.transformer.resblocks.5.mlp.c_proj.bias", 1024);
        expect(m, "cond_stage_model.model.transformer.resblocks.5.ln_2.weight", 1024);
        expect(m, "cond_stage_model.model.ln_final.weight", 1024);
        expect(m, "model.diffusion_model.input_blocks.1.1.proj_in.weight", 320, 320);
        expect(m, "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight", 320, 1024);
        expect(m, "model.diffusion_model.output_blocks.11.1.proj_out.weight", 320, 320);
    }

    static Map<String, long[]> ldm(DiffusersFolder f) {
        Map<String, long[]> m = new HashMap<>();
        Set<String> diffusersNames = new HashSet<>();
        for (LdmLayout.Entry e : LdmLayout.entries(f)) {
            long[] prev = m.put(e.ldmName(), e.ldmShape());
            if (prev != null) {
                assertEquals(LdmLayout.Kind.QKV_PART, e.kind(), "only fused q/k/v share an LDM name: " + e.ldmName());
            }
            assertTrue(diffusersNames.add(e.component() + "/" + e.diffusers().name()));
        }
        int total = 0;
        for (Component c : Component.values()) {
            total += f.manifest(c).size();
        }
        assertEquals(total, diffusersNames.size(), "every diffusers tensor has an LDM place");
        return m;
    }

    static void expect(Map<String, long[]> m, String name, long... shape) {
        assertTrue(m.containsKey(name), "no " + name);
        assertArrayEquals(shape, m.get(name), name);
    }

    @Test
    void tinyRoundTripsTensorByTensorInBothLayouts() throws Exception {
        for (DiffusersFolder f : List.of(layout(Presets.TINY), tinySd2())) {
            DiffusersFolder.Weights w = DiffusersFolder.randomInit(7, f.unet(), f.textEncoder(), f.vae());
            Path dir = tmp.resolve(LdmLayout.openClip(f) ? "sd2" : "sd1");
            Files.createDirectories(dir.resolve("tokenizer"));
            Path file = dir.resolve("model.safetensors");
            LdmCheckpoint.write(file, f, w, DType.F32);
            SafetensorsFile sf = SafetensorsFile.open(file);
            Set<String> names = new HashSet<>();
            for (LdmLayout.Entry e : LdmLayout.entries(f)) {
                names.add(e.ldmName());
            }
            assertEquals(names, sf.tensors().keySet(), "the file holds exactly the LDM names");
            DiffusersFolder back = DiffusersFolder.read(file);
            assertEquals(f.unet(), back.unet());
            assertEquals(f.textEncoder(), back.textEncoder());
            assertEquals(f.vae(), back.vae());
            assertEquals(f.scheduler().prediction(), back.scheduler().prediction());
            assertEquals(dir.toAbsolutePath(), back.dir(), "the tokenizer folder beside the file");
            TensorSource src = TensorSource.open(file, back);
            int checked = 0;
            for (Component c : Component.values()) {
                for (ParamSpec p : f.manifest(c)) {
                    assertArrayEquals(w.values(c, p), src.read(c, p), c.folder() + "/" + p.name());
                    checked++;
                }
            }
            assertTrue(checked > 100);
            if (LdmLayout.openClip(f)) {
                // q, k, v stacked in that order in OpenCLIP's in_proj
                ParamSpec q = f.manifest(Component.TEXT_ENCODER).stream()
                        .filter(p -> p.name().equals("text_model.encoder.layers.1.self_attn.k_proj.weight")).findFirst().orElseThrow();
                float[] fused = sf.readFloats("cond_stage_model.model.transformer.resblocks.1.attn.in_proj_weight");
                float[] k = w.values(Component.TEXT_ENCODER, q);
                assertArrayEquals(k, java.util.Arrays.copyOfRange(fused, k.length, 2 * k.length));
            }
        }
    }

    /**
     * A header-only (sparse) file with the SD 1.5 / 2.1 names and shapes: the configs are inferred
     * from the presets and every tensor checked, without allocating a single weight.
     */
    @Test
    void filesWithoutOurMetadataAreReadAsTheSd15OrSd21Preset() throws Exception {
        Path sd15 = sparse(tmp.resolve("a").resolve("v1-5.safetensors"), layout(Presets.SD15), Map.of(
                "model_ema.decay", new long[] {}, "alphas_cumprod", new long[] {1000},
                "cond_stage_model.transformer.text_model.embeddings.position_ids", new long[] {1, 77}));
        DiffusersFolder f = DiffusersFolder.read(sd15);
        assertEquals(Presets.SD15.unet, f.unet());
        assertEquals(DdpmScheduler.Prediction.EPSILON, f.scheduler().prediction());
        LdmCheckpoint.open(sd15); // names and shapes checked

        Path sd21 = sparse(tmp.resolve("b").resolve("v2-1_768.safetensors"), layout(Presets.SD21), Map.of(
                "cond_stage_model.model.transformer.resblocks.23.ln_1.weight", new long[] {1024},
                "cond_stage_model.model.text_projection", new long[] {1024, 1024}, "cond_stage_model.model.logit_scale", new long[] {}));
        DiffusersFolder g = DiffusersFolder.read(sd21);
        assertEquals(Presets.SD21.textEncoder, g.textEncoder());
        assertEquals(DdpmScheduler.Prediction.V_PREDICTION, g.scheduler().prediction(), "SD2 without a yaml: 768-v");
        LdmCheckpoint.open(sd21);
        Files.writeString(tmp.resolve("b").resolve("v2-1_768.yaml"), "model:\n  params:\n    parameterization: \"v\"\n");
        assertEquals(DdpmScheduler.Prediction.V_PREDICTION, DiffusersFolder.read(sd21).scheduler().prediction());
        Files.writeString(tmp.resolve("b").resolve("v2-1_768.yaml"), "model:\n  params:\n    linear_start: 0.00085\n");
        assertEquals(DdpmScheduler.Prediction.EPSILON, DiffusersFolder.read(sd21).scheduler().prediction(), "a base (512) yaml");

        Path bad = sparse(tmp.resolve("c").resolve("odd.safetensors"), layout(Presets.SD15),
                Map.of("model.diffusion_model.input_blocks.99.0.weight", new long[] {3}));
        ModelError e = assertThrows(ModelError.class, () -> LdmCheckpoint.open(bad));
        assertTrue(e.getMessage().contains("unexpected tensor model.diffusion_model.input_blocks.99.0.weight"), e.getMessage());
    }

    /** Writes only a safetensors header for {@code f}'s LDM tensors (F16) and extends the file sparsely. */
    static Path sparse(Path file, DiffusersFolder f, Map<String, long[]> extra) throws Exception {
        Files.createDirectories(file.getParent().resolve("tokenizer"));
        ObjectNode h = Json.MAPPER.createObjectNode();
        long off = 0;
        Map<String, long[]> all = new java.util.LinkedHashMap<>();
        for (LdmLayout.Entry e : LdmLayout.entries(f)) {
            all.put(e.ldmName(), e.ldmShape());
        }
        all.putAll(extra);
        for (Map.Entry<String, long[]> e : all.entrySet()) {
            long n = 1;
            for (long d : e.getValue()) {
                n *= d;
            }
            ObjectNode t = h.putObject(e.getKey());
            t.put("dtype", "F16");
            var s = t.putArray("shape");
            for (long d : e.getValue()) {
                s.add(d);
            }
            t.putArray("data_offsets").add(off).add(off + 2 * n);
            off += 2 * n;
        }
        byte[] header = h.toString().getBytes(StandardCharsets.UTF_8);
        try (RandomAccessFile raf = new RandomAccessFile(file.toFile(), "rw")) {
            byte[] len = java.nio.ByteBuffer.allocate(8).order(java.nio.ByteOrder.LITTLE_ENDIAN).putLong(header.length).array();
            raf.write(len);
            raf.write(header);
            raf.setLength(8 + header.length + off);
        }
        return file;
    }

    @Test
    void pickledCheckpointsAreRefused() {
        for (String name : List.of("model.ckpt", "model.pt", "pytorch_model.bin", "x.pth")) {
            ConfigError e = assertThrows(ConfigError.class, () -> DiffusersFolder.read(tmp.resolve(name)));
            assertTrue(e.getMessage().contains("pickled") && e.getMessage().contains("arbitrary code") && !e.getMessage().contains("\n"),
                    e.getMessage());
        }
    }

    @Test
    void aSingleFileWithoutATokenizerIsAClearError() throws Exception {
        DiffusersFolder f = layout(Presets.TINY);
        Path file = tmp.resolve("lonely.safetensors");
        LdmCheckpoint.write(file, f, DiffusersFolder.randomInit(1, f.unet(), f.textEncoder(), f.vae()), DType.F16);
        ConfigError e = assertThrows(ConfigError.class, () -> DiffusersFolder.read(file));
        assertTrue(e.getMessage().contains("without a tokenizer"), e.getMessage());
    }
}
