package dev.dreamcluster.model;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.HashSet;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Parameter counts and names of the real SD architectures, as diffusers and transformers report them. */
class ParamManifestTest {
    @Test
    void shouldCountSd15Exactly() {
        List<ParamSpec> unet = ParamManifest.unet(Presets.SD15.unet);
        assertEquals(859_520_964L, ParamManifest.count(unet));
        assertEquals(686, unet.size());
        List<ParamSpec> te = ParamManifest.textEncoder(Presets.SD15.textEncoder);
        assertEquals(123_060_480L, ParamManifest.count(te));
        assertEquals(196, te.size());
        List<ParamSpec> vae = ParamManifest.vae(Presets.SD15.vae);
        assertEquals(83_653_863L, ParamManifest.count(vae));
        assertEquals(248, vae.size());
    }

    @Test
    void shouldCountSd21Exactly() {
        assertEquals(865_910_724L, ParamManifest.count(ParamManifest.unet(Presets.SD21.unet)));
        List<ParamSpec> te = ParamManifest.textEncoder(Presets.SD21.textEncoder);
        assertEquals(340_387_840L, ParamManifest.count(te));
        assertEquals(372, te.size());
    }

    @Test
    void shouldUseDiffusersNamesAndShapes() {
        List<ParamSpec> unet = ParamManifest.unet(Presets.SD15.unet);
        assertEquals(new ParamSpec("conv_in.weight", new long[] {320, 4, 3, 3}), unet.get(0));
        assertEquals(true, unet.contains(new ParamSpec(
                "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight", new long[] {320, 768})));
        assertEquals(true, unet.contains(new ParamSpec("up_blocks.1.resnets.2.conv_shortcut.weight", new long[] {1280, 1920, 1, 1})));
        assertEquals(true, unet.contains(new ParamSpec("mid_block.attentions.0.proj_in.weight", new long[] {1280, 1280, 1, 1})));
        assertEquals(true, ParamManifest.unet(Presets.SD21.unet).contains(
                new ParamSpec("mid_block.attentions.0.proj_in.weight", new long[] {1280, 1280})));
        assertEquals(unet.size(), new HashSet<>(unet.stream().map(ParamSpec::name).toList()).size(), "names are unique");
    }
}
