package dev.dreamcluster.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import dev.dreamcluster.config.Json;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * CLIP BPE: clean whitespace, lower-case, split with CLIP's pattern, map each piece's UTF-8 bytes to
 * GPT-2's printable byte alphabet, mark the word end with {@code </w>}, merge pairs by rank, look up
 * ids. {@link #encode} adds BOS/EOS, truncates to {@code maxLength} (77) and pads (SD1 pads with
 * {@code <|endoftext|>}, SD2 with {@code !}). Thread-safe.
 */
public final class ClipTokenizer {
    public static final String BOS = "<|startoftext|>";
    public static final String EOS = "<|endoftext|>";
    public static final int MAX_LENGTH = 77;

    private static final Pattern WHITESPACE = Pattern.compile("\\s+", Pattern.UNICODE_CHARACTER_CLASS);
    private static final String PIECES_REGEX =
            "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+";
    private static final int FLAGS = Pattern.CASE_INSENSITIVE | Pattern.UNICODE_CASE | Pattern.UNICODE_CHARACTER_CLASS;
    private static final char[] BYTE_TO_CHAR = byteAlphabet();

    private final Map<String, Integer> vocab;
    /**
     * CLIP's split pattern; a pad token other than BOS/EOS is a special token too, matched first (SD2
     * pads with "!", so every "!" in a caption becomes id 0, exactly as Hugging Face tokenizes it).
     */
    private final Pattern pieces;
    private final String specialPad;
    private final Map<String, Integer> mergeRank;
    private final Map<String, int[]> cache = new ConcurrentHashMap<>();
    private final int bos;
    private final int eos;
    private final int pad;

    /** The result of {@link #encode}. */
    public record Encoding(int[] inputIds, int length, boolean truncated) {}

    public ClipTokenizer(Map<String, Integer> vocab, List<String> merges, String padToken) {
        this.vocab = Map.copyOf(vocab);
        this.mergeRank = new HashMap<>();
        for (int i = 0; i < merges.size(); i++) {
            mergeRank.putIfAbsent(merges.get(i), i);
        }
        this.bos = id(BOS);
        this.eos = id(EOS);
        this.pad = id(padToken);
        boolean extra = !padToken.equals(BOS) && !padToken.equals(EOS);
        this.specialPad = extra ? padToken : null;
        this.pieces = Pattern.compile(extra ? Pattern.quote(padToken) + "|" + PIECES_REGEX : PIECES_REGEX, FLAGS);
    }

    private int id(String token) {
        Integer i = vocab.get(token);
        if (i == null) {
            throw new IllegalArgumentException("tokenizer vocabulary has no " + token);
        }
        return i;
    }

    /** Loads {@code dir/vocab.json}, {@code dir/merges.txt} and the pad token of {@code special_tokens_map.json}. */
    public static ClipTokenizer load(Path dir) {
        try {
            JsonNode v = Json.readObject(dir.resolve("vocab.json"), dir.resolve("vocab.json").toString());
            Map<String, Integer> vocab = new HashMap<>();
            v.fields().forEachRemaining(e -> vocab.put(e.getKey(), e.getValue().asInt()));
            List<String> merges = new ArrayList<>();
            for (String line : Files.readAllLines(dir.resolve("merges.txt"), StandardCharsets.UTF_8)) {
                if (line.startsWith("#version") || line.isBlank()) {
                    continue;
                }
                merges.add(line.strip());
            }
            String padToken = EOS;
            Path special = dir.resolve("special_tokens_map.json");
            if (Files.isRegularFile(special)) {
                JsonNode p = Json.readObject(special, special.toString()).path("pad_token");
                if (p.isTextual()) {
                    padToken = p.asText();
                } else if (p.has("content")) {
                    padToken = p.path("content").asText();
                }
            }
            return new ClipTokenizer(vocab, merges, padToken);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read tokenizer from " + dir, e);
        }
    }

    public int vocabSize() {
        return vocab.size();
    }

    /** CLIP's text clean-up: Unicode NFC, whitespace runs to one space, trimmed, lower-cased. */
    public static String clean(String text) {
        String t = Normalizer.normalize(text, Normalizer.Form.NFC);
        return WHITESPACE.matcher(t).replaceAll(" ").strip().toLowerCase(Locale.ROOT);
    }

    /** Token ids of {@code text} without BOS/EOS, padding or truncation. */
    public int[] encodeNoSpecial(String text) {
        List<Integer> ids = new ArrayList<>();
        Matcher m = pieces.matcher(clean(text));
        while (m.find()) {
            String piece = m.group();
            if (piece.equals(BOS) || piece.equals(EOS) || piece.equals(specialPad)) {
                ids.add(vocab.get(piece));
                continue;
            }
            for (int id : cache.computeIfAbsent(piece, this::bpe)) {
                ids.add(id);
            }
        }
        return ids.stream().mapToInt(Integer::intValue).toArray();
    }

    /** BOS + at most {@code maxLength - 2} tokens + EOS, padded to {@code maxLength}. */
    public Encoding encode(String text, int maxLength) {
        int[] body = encodeNoSpecial(text);
        int keep = Math.min(body.length, maxLength - 2);
        int[] ids = new int[maxLength];
        Arrays.fill(ids, pad);
        ids[0] = bos;
        System.arraycopy(body, 0, ids, 1, keep);
        ids[keep + 1] = eos;
        return new Encoding(ids, body.length, body.length > keep);
    }

    public Encoding encode(String text) {
        return encode(text, MAX_LENGTH);
    }

    /** Byte-pair merging of one pre-tokenized piece; the last symbol carries the word-end mark. */
    private int[] bpe(String piece) {
        byte[] bytes = piece.getBytes(StandardCharsets.UTF_8);
        List<String> word = new ArrayList<>(bytes.length);
        for (int i = 0; i < bytes.length; i++) {
            String s = String.valueOf(BYTE_TO_CHAR[bytes[i] & 0xFF]);
            word.add(i == bytes.length - 1 ? s + "</w>" : s);
        }
        while (word.size() > 1) {
            int best = -1;
            int bestRank = Integer.MAX_VALUE;
            for (int i = 0; i + 1 < word.size(); i++) {
                Integer r = mergeRank.get(word.get(i) + " " + word.get(i + 1));
                if (r != null && r < bestRank) {
                    bestRank = r;
                    best = i;
                }
            }
            if (best < 0) {
                break;
            }
            // merge every occurrence of the best pair, left to right, as the reference does
            String a = word.get(best);
            String b = word.get(best + 1);
            List<String> next = new ArrayList<>(word.size());
            for (int i = 0; i < word.size(); i++) {
                if (i + 1 < word.size() && word.get(i).equals(a) && word.get(i + 1).equals(b)) {
                    next.add(a + b);
                    i++;
                } else {
                    next.add(word.get(i));
                }
            }
            word = next;
        }
        int[] ids = new int[word.size()];
        for (int i = 0; i < ids.length; i++) {
            Integer id = vocab.get(word.get(i));
            if (id == null) {
                // the byte alphabet is always in a CLIP vocabulary; a generated one without it maps to EOS
                id = eos;
            }
            ids[i] = id;
        }
        return ids;
    }

    /** GPT-2's reversible byte to printable-character table. */
    static char[] byteAlphabet() {
        char[] map = new char[256];
        boolean[] direct = new boolean[256];
        for (int b = '!'; b <= '~'; b++) {
            direct[b] = true;
        }
        for (int b = 0xA1; b <= 0xAC; b++) {
            direct[b] = true;
        }
        for (int b = 0xAE; b <= 0xFF; b++) {
            direct[b] = true;
        }
        int n = 0;
        for (int b = 0; b < 256; b++) {
            map[b] = direct[b] ? (char) b : (char) (256 + n++);
        }
        return map;
    }

    /** The 256 byte symbols in GPT-2 order (printable bytes first): the base of every CLIP vocabulary. */
    public static List<String> byteSymbols() {
        List<String> out = new ArrayList<>(256);
        char[] map = byteAlphabet();
        List<Integer> order = new ArrayList<>();
        for (int b = 0; b < 256; b++) {
            if (map[b] < 256) {
                order.add(b);
            }
        }
        for (int b = 0; b < 256; b++) {
            if (map[b] >= 256) {
                order.add(b);
            }
        }
        for (int b : order) {
            out.add(String.valueOf(map[b]));
        }
        return out;
    }
}
