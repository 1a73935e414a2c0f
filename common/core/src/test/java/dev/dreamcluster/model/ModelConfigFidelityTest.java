package dev.dreamcluster.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.config.Json;
import dev.dreamcluster.safetensors.DType;
import dev.dreamcluster.safetensors.SafetensorsFile;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * A diffusers config value DreamCluster does not implement is refused naming the key; a saved folder
 * keeps every key of its source configs (tested by diffing the JSON).
 */
class ModelConfigFidelityTest {
    static Path tiny(Path tmp) {
        Path dir = tmp.resolve("tiny");
        DiffusersFolderTest.writeTiny(dir, DType.F32);
        return dir;
    }

    static void edit(Path dir, String rel, String key, String valueJson) throws Exception {
        Path f = dir.resolve(rel);
        ObjectNode n = (ObjectNode) Json.MAPPER.readTree(f.toFile());
        n.set(key, Json.MAPPER.readTree(valueJson));
        Files.writeString(f, n.toString());
    }

    @ParameterizedTest(name = "{0}/config.json {1} = {2} is refused")
    @CsvSource(delimiter = ';', value = {
        "unet; center_input_sample; true",
        "unet; mid_block_scale_factor; 2",
        "unet; downsample_padding; 0",
        "unet; act_fn; \"gelu\"",
        "unet; timestep_post_act; \"silu\"",
        "unet; time_embedding_act_fn; \"silu\"",
        "unet; only_cross_attention; true",
        "unet; only_cross_attention; [false, true]",
        "unet; transformer_layers_per_block; 2",
        "unet; class_embed_type; \"timestep\"",
        "unet; resnet_time_scale_shift; \"scale_shift\"",
        "unet; conv_in_kernel; 7",
        "unet; addition_embed_type; \"text_time\"",
        "unet; layers_per_block; [2, 2]",
        "unet; some_future_key; 1",
        "vae; act_fn; \"gelu\"",
        "vae; shift_factor; 0.0609",
        "vae; use_quant_conv; false",
        "vae; down_block_types; [\"DownEncoderBlock2D\", \"SomethingElse\"]",
    })
    void unimplementedValuesAreRefusedNamingTheKey(String component, String key, String value, @TempDir Path tmp)
            throws Exception {
        Path dir = tiny(tmp);
        edit(dir, component + "/config.json", key, value);
        ConfigError e = assertThrows(ConfigError.class, () -> DiffusersFolder.read(dir));
        assertTrue(e.getMessage().startsWith(dir.resolve(component + "/config.json") + " at " + key + ": "), e.getMessage());
    }

    @ParameterizedTest(name = "{0}/config.json {1} = {2} loads")
    @CsvSource(delimiter = ';', value = {
        "unet; center_input_sample; false",
        "unet; only_cross_attention; [false, false]",
        "unet; upcast_attention; true",
        "unet; timestep_post_act; null",
        "unet; mid_block_scale_factor; 1.0",
        "unet; some_future_key; null",
        "vae; force_upcast; true",
        "vae; shift_factor; null",
    })
    void defaultValuesLoad(String component, String key, String value, @TempDir Path tmp) throws Exception {
        Path dir = tiny(tmp);
        edit(dir, component + "/config.json", key, value);
        assertEquals(Presets.TINY.unet, DiffusersFolder.read(dir).unet());
    }

    @Test
    void schedulerValuesThatChangeTrainingNoiseAreRefused(@TempDir Path tmp) throws Exception {
        Path dir = tiny(tmp);
        edit(dir, "scheduler/scheduler_config.json", "rescale_betas_zero_snr", "true");
        ConfigError e = assertThrows(ConfigError.class, () -> DiffusersFolder.read(dir));
        assertTrue(e.getMessage().contains("at rescale_betas_zero_snr: true"), e.getMessage());
        edit(dir, "scheduler/scheduler_config.json", "rescale_betas_zero_snr", "false");
        edit(dir, "scheduler/scheduler_config.json", "trained_betas", "[0.1, 0.2]");
        assertThrows(ConfigError.class, () -> DiffusersFolder.read(dir));
    }

    @Test
    void numAttentionHeadsWinsOverAttentionHeadDim(@TempDir Path tmp) throws Exception {
        Path dir = tiny(tmp);
        JsonNode heads = Json.MAPPER.valueToTree(Presets.TINY.unet.attentionHeadDim());
        edit(dir, "unet/config.json", "num_attention_heads", heads.toString());
        edit(dir, "unet/config.json", "attention_head_dim", "999"); // ignored by diffusers once num_attention_heads is set
        assertEquals(Presets.TINY.unet, DiffusersFolder.read(dir).unet());
    }

    @Test
    void aSavedFolderKeepsEveryKeyOfItsSourceConfigs(@TempDir Path tmp) throws Exception {
        Path src = tiny(tmp);
        // what SD 2.1's folder carries and DreamCluster does not read
        edit(src, "unet/config.json", "upcast_attention", "true");
        edit(src, "unet/config.json", "_name_or_path", "\"stabilityai/stable-diffusion-2-1\"");
        edit(src, "vae/config.json", "force_upcast", "true");
        edit(src, "text_encoder/config.json", "torch_dtype", "\"float16\"");
        edit(src, "text_encoder/config.json", "projection_dim", "512");
        edit(src, "scheduler/scheduler_config.json", "_class_name", "\"DDIMScheduler\"");
        edit(src, "scheduler/scheduler_config.json", "timestep_spacing", "\"leading\"");
        edit(src, "scheduler/scheduler_config.json", "rescale_betas_zero_snr", "false");
        edit(src, "model_index.json", "scheduler", "[\"diffusers\", \"DDIMScheduler\"]");
        edit(src, "model_index.json", "safety_checker", "[\"stable_diffusion\", \"StableDiffusionSafetyChecker\"]");
        edit(src, "model_index.json", "requires_safety_checker", "true");
        DiffusersFolder source = DiffusersFolder.read(src);
        Path out = tmp.resolve("saved");
        DiffusersFolder.writeTrained(out, source, DType.F16,
                (c, p) -> SafetensorsFile.open(DiffusersFolder.weightsFile(src, c)).readFloats(p.name()));
        for (String rel : new String[] {"unet/config.json", "vae/config.json", "scheduler/scheduler_config.json"}) {
            assertEquals(read(src, rel), read(out, rel), rel);
        }
        ObjectNode te = (ObjectNode) read(src, "text_encoder/config.json");
        te.put("torch_dtype", "float16"); // what was written
        assertEquals(te, read(out, "text_encoder/config.json"));
        DType written = SafetensorsFile.open(DiffusersFolder.weightsFile(out, dev.dreamcluster.freeze.Component.TEXT_ENCODER))
                .tensors().values().iterator().next().dtype();
        assertEquals(DType.F16, written);
        ObjectNode index = (ObjectNode) read(src, "model_index.json");
        index.set("safety_checker", Json.MAPPER.readTree("[null, null]")); // not copied, so not referenced
        index.put("requires_safety_checker", false);
        assertEquals(index, read(out, "model_index.json"));
        DiffusersFolder.read(out); // and it loads
        // float32 is recorded as such
        Path out32 = tmp.resolve("saved32");
        DiffusersFolder.writeTrained(out32, source, DType.F32,
                (c, p) -> SafetensorsFile.open(DiffusersFolder.weightsFile(src, c)).readFloats(p.name()));
        assertEquals("float32", read(out32, "text_encoder/config.json").get("torch_dtype").asText());
    }

    static JsonNode read(Path dir, String rel) throws Exception {
        return Json.MAPPER.readTree(dir.resolve(rel).toFile());
    }
}
