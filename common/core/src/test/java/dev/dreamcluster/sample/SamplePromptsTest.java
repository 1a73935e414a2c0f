package dev.dreamcluster.sample;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.diffusion.InferenceSampler;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SamplePromptsTest {
    @TempDir
    Path tmp;

    @Test
    void txtIsOnePromptPerLineWithTheRunsSeedAndResolution() throws Exception {
        Path f = tmp.resolve("p.txt");
        Files.writeString(f, "  a cat  \na dog\n");
        SamplePrompts p = SamplePrompts.read(f, 512, 555, 2, w -> { });
        assertEquals(List.of(new SampleRequest("a cat", "", 555, 512, 512, false), new SampleRequest("a dog", "", 555, 512, 512, false)),
                p.requests());
        assertEquals(List.of(7.0, 4.0, 1.01), p.cfgs());
        assertEquals(InferenceSampler.Kind.DDIM, p.scheduler());
        assertEquals(30, p.steps());
        assertNull(p.everyNSteps());
        Files.writeString(f, "");
        assertEquals(2, SamplePrompts.read(f, 512, 1, 2, w -> { }).requests().stream().filter(SampleRequest::randomCaption).count());
    }

    @Test
    void jsonAsEveryDream2sSampleGeneratorReadsIt() throws Exception {
        Path f = tmp.resolve("p.json");
        // EveryDream2's shipped sample_prompts.json, less its comments-free formatting
        Files.writeString(f, "{\"batch_size\": 3, \"seed\": 555, \"cfgs\": [7, 4], \"scheduler\": \"dpm++\", \"num_inference_steps\": 15,"
                + " \"show_progress_bars\": true, \"samples\": [{\"prompt\": \"ted bennet and a man\", \"negative_prompt\": \"distorted\"},"
                + " {\"prompt\": \"a photograph of ted bennet riding a bicycle\", \"seed\": -1},"
                + " {\"random_caption\": true, \"seed\": 555, \"cfgs\": [1, 11], \"size\": [640, 384]},"
                + " {\"prompt\": \"wide\", \"aspect_ratio\": 1.5}], \"generate_samples_every_n_steps\": 100}");
        List<String> warnings = new ArrayList<>();
        SamplePrompts p = SamplePrompts.read(f, 512, 1, 2, warnings::add);
        assertEquals(List.of(7.0, 4.0), p.cfgs());
        assertEquals(InferenceSampler.Kind.DDIM, p.scheduler());
        assertEquals(15, p.steps());
        assertEquals(100, p.everyNSteps());
        assertEquals(new SampleRequest("ted bennet and a man", "distorted", 555, 512, 512, false), p.requests().get(0));
        assertEquals(-1, p.requests().get(1).seed());
        assertEquals(new SampleRequest("", "", 555, 640, 384, true), p.requests().get(2));
        assertArrayEquals(new int[] {640, 384}, new int[] {p.requests().get(2).width(), p.requests().get(2).height()});
        assertEquals(2, warnings.size(), warnings.toString()); // dpm++ -> ddim; per-sample cfgs ignored as EveryDream2 does
        assertTrue(warnings.get(0).contains("dpm++"));
        // get_best_size_for_aspect_ratio(1.5, 512): a landscape multiple of 64 within 128 x 64 pixels of 512^2
        SampleRequest wide = p.requests().get(3);
        assertEquals(SamplePrompts.bestSizeForAspectRatio(1.5, 512)[0], wide.width());
        assertTrue(wide.width() > wide.height() && wide.width() % 64 == 0 && wide.height() % 64 == 0);
        assertTrue(Math.abs((long) wide.width() * wide.height() - 512 * 512) <= 128 * 64);
    }

    @Test
    void badValuesAreOneLineErrors() throws Exception {
        Path f = tmp.resolve("bad.json");
        Files.writeString(f, "{\"scheduler\": \"warp\"}");
        ConfigError e = assertThrows(ConfigError.class, () -> SamplePrompts.read(f, 512, 1, 2, w -> { }));
        assertTrue(e.getMessage().endsWith("at scheduler: \"warp\" is not allowed (ddim or euler)"), e.getMessage());
        Files.writeString(f, "{\"cfgs\": [0.5]}");
        assertThrows(ConfigError.class, () -> SamplePrompts.read(f, 512, 1, 2, w -> { }));
        assertThrows(ConfigError.class, () -> SamplePrompts.read(tmp.resolve("missing.txt"), 512, 1, 2, w -> { }));
        Path yaml = tmp.resolve("p.yaml");
        Files.writeString(yaml, "x");
        assertThrows(ConfigError.class, () -> SamplePrompts.read(yaml, 512, 1, 2, w -> { }));
    }
}
