package dev.dreamcluster.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import dev.dreamcluster.config.Json;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The real CLIP vocabulary (shared/reference/clip-tokenizer) against OpenAI's reference tokenizations. */
class ClipTokenizerTest {
    static final Path DIR = shared().resolve("reference").resolve("clip-tokenizer");

    static Path shared() {
        String p = System.getProperty("dreamcluster.shared");
        return (p != null && Files.isDirectory(Path.of(p)) ? Path.of(p) : Path.of("..", "..", "..", "shared")).toAbsolutePath();
    }

    @Test
    void shouldMatchEveryReferenceCase() throws Exception {
        ClipTokenizer tok = ClipTokenizer.load(DIR);
        assertEquals(49408, tok.vocabSize());
        for (JsonNode c : Json.MAPPER.readTree(DIR.resolve("cases.json").toFile())) {
            String text = c.get("text").asText();
            int[] want = Json.MAPPER.convertValue(c.get("ids_no_special"), int[].class);
            int[] want77 = Json.MAPPER.convertValue(c.get("input_ids_77"), int[].class);
            assertArrayEquals(want, tok.encodeNoSpecial(text), text);
            ClipTokenizer.Encoding e = tok.encode(text);
            assertArrayEquals(want77, e.inputIds(), text);
            assertEquals(want.length, e.length());
            assertEquals(want.length > 75, e.truncated(), text);
        }
    }

    @Test
    void shouldPadWithTheConfiguredToken() {
        ClipTokenizer sd2 = new ClipTokenizer(java.util.Map.of("!", 0, "a</w>", 1, ClipTokenizer.BOS, 2, ClipTokenizer.EOS, 3),
                List.of(), "!");
        ClipTokenizer.Encoding e = sd2.encode("a a", 6);
        assertArrayEquals(new int[] {2, 1, 1, 3, 0, 0}, e.inputIds());
        assertEquals(2, e.length());
    }

    @Test
    void shouldHaveTheGpt2ByteAlphabet() {
        List<String> s = ClipTokenizer.byteSymbols();
        assertEquals(256, s.size());
        assertEquals("!", s.get(0));
        assertEquals("\u0100", s.get(188)); // byte 0 comes first among the remapped ones
    }
}
