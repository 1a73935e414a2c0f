package dev.dreamcluster.tokenizer;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dreamcluster.config.Json;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Generates a CLIP-format tokenizer folder for randomly initialised presets (no vocabulary is ever
 * downloaded): the 512 byte symbols (plain and word-final), whole-word merges for a small English
 * and shape/colour corpus, unused filler entries up to the requested size, then BOS and EOS as the
 * last two ids (as in CLIP: 49406, 49407 for 49408 entries).
 */
public final class TokenizerFiles {
    /** Words the synthetic dataset's captions and typical prompts use. */
    static final List<String> CORPUS = List.of(
            "a", "an", "the", "of", "on", "in", "with", "and", "photo", "picture", "painting", "drawing", "image", "red",
            "green", "blue", "yellow", "orange", "purple", "white", "black", "gray", "pink", "brown", "cyan", "circle",
            "square", "triangle", "rectangle", "ellipse", "star", "cross", "shape", "shapes", "small", "large", "big",
            "tiny", "background", "dark", "light", "bright", "left", "right", "top", "bottom", "center", "two", "three",
            "cat", "dog", "person", "man", "woman", "girl", "boy", "portrait", "landscape", "style", "art", "by",
            "masterpiece", "best", "quality", "high", "detailed", "house", "tree", "sky", "sun", "moon", "water");

    private TokenizerFiles() {}

    /** Writes vocab.json, merges.txt, special_tokens_map.json and tokenizer_config.json into {@code dir}. */
    public static void write(Path dir, int vocabSize, boolean padWithExclamation) {
        List<String> symbols = ClipTokenizer.byteSymbols();
        Set<String> vocab = new LinkedHashSet<>(symbols);
        for (String s : symbols) {
            vocab.add(s + "</w>");
        }
        List<String> merges = new ArrayList<>();
        for (String word : CORPUS) {
            // whole-word merges, left to right: "c i", "ci r", "cir c", ..., "circl e</w>"
            String cur = String.valueOf(word.charAt(0));
            for (int i = 1; i < word.length(); i++) {
                String next = i == word.length() - 1 ? word.charAt(i) + "</w>" : String.valueOf(word.charAt(i));
                String merged = cur + next;
                if (vocab.size() >= vocabSize - 2) {
                    break;
                }
                if (vocab.add(merged)) {
                    merges.add(cur + " " + next);
                }
                cur = merged;
            }
        }
        if (vocab.size() > vocabSize - 2) {
            throw new IllegalArgumentException("vocab_size " + vocabSize + " is too small (need > " + (symbols.size() * 2 + 2) + ")");
        }
        for (int i = 0; vocab.size() < vocabSize - 2; i++) {
            vocab.add("<|unused" + i + "|>");
        }
        vocab.add(ClipTokenizer.BOS);
        vocab.add(ClipTokenizer.EOS);
        Map<String, Integer> ids = new LinkedHashMap<>();
        for (String v : vocab) {
            ids.put(v, ids.size());
        }
        try {
            Files.createDirectories(dir);
            Files.write(dir.resolve("vocab.json"), Json.MAPPER.writeValueAsBytes(ids));
            List<String> lines = new ArrayList<>();
            lines.add("#version: 0.2");
            lines.addAll(merges);
            Files.write(dir.resolve("merges.txt"), lines, StandardCharsets.UTF_8);
            ObjectNode special = Json.MAPPER.createObjectNode();
            special.put("bos_token", ClipTokenizer.BOS);
            special.put("eos_token", ClipTokenizer.EOS);
            special.put("pad_token", padWithExclamation ? "!" : ClipTokenizer.EOS);
            special.put("unk_token", ClipTokenizer.EOS);
            Files.write(dir.resolve("special_tokens_map.json"), Json.MAPPER.writerWithDefaultPrettyPrinter().writeValueAsBytes(special));
            ObjectNode cfg = Json.MAPPER.createObjectNode();
            cfg.put("tokenizer_class", "CLIPTokenizer");
            cfg.put("model_max_length", ClipTokenizer.MAX_LENGTH);
            cfg.put("do_lower_case", true);
            cfg.put("bos_token", ClipTokenizer.BOS);
            cfg.put("eos_token", ClipTokenizer.EOS);
            cfg.put("pad_token", padWithExclamation ? "!" : ClipTokenizer.EOS);
            cfg.put("unk_token", ClipTokenizer.EOS);
            Files.write(dir.resolve("tokenizer_config.json"), Json.MAPPER.writerWithDefaultPrettyPrinter().writeValueAsBytes(cfg));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write tokenizer to " + dir, e);
        }
    }
}
