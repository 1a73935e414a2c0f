package dev.dreamcluster.sample;

import com.fasterxml.jackson.databind.JsonNode;
import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.config.Json;
import dev.dreamcluster.diffusion.InferenceSampler;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.function.Consumer;

/**
 * The sample settings of a run, as EveryDream2's SampleGenerator reads them (utils/sample_generator.py):
 *
 * <ul>
 *   <li>{@code .txt}: every line (stripped) is a prompt, with an empty negative prompt, the run's seed
 *       and a resolution x resolution square; an empty file means random training captions.
 *   <li>{@code .json}: {@code resolution}, {@code cfgs} (default [7, 4, 1.01]), {@code scheduler}
 *       (default ddim), {@code num_inference_steps} (30), {@code generate_pretrain_samples},
 *       {@code generate_samples_every_n_steps} (beats train.json's sample_steps), {@code seed},
 *       {@code batch_size}, {@code show_progress_bars}, and {@code samples}: objects with
 *       {@code prompt}, {@code negative_prompt}, {@code seed}, {@code size} [w, h] or
 *       {@code aspect_ratio}, {@code random_caption}. No {@code samples} means random captions
 *       (min(4, batch_size) of them).
 * </ul>
 *
 * @param everyNSteps the cadence from the file, or null for train.json's sample_steps
 */
public record SamplePrompts(List<SampleRequest> requests, List<Double> cfgs, InferenceSampler.Kind scheduler, int steps,
        boolean pretrainSamples, Integer everyNSteps) {
    public static final List<Double> DEFAULT_CFGS = List.of(7.0, 4.0, 1.01);
    /** EveryDream2's scheduler names that DreamCluster does not implement: sampled with DDIM instead, with a warning. */
    static final Set<String> OTHER_ED2_SCHEDULERS = Set.of("pndm", "ddpm", "lms", "euler_a", "kdpm2", "dpm++", "dpm++_2s",
            "dpm++_2m", "dpm++_sde", "dpm++_2m_sde", "dpm++_2s_k", "dpm++_2m_k", "dpm++_sde_k", "dpm++_2m_sde_k");
    static final Set<String> TOP_KEYS = Set.of("resolution", "cfgs", "batch_size", "scheduler", "num_inference_steps",
            "show_progress_bars", "generate_pretrain_samples", "generate_samples_every_n_steps", "seed", "samples");
    static final Set<String> SAMPLE_KEYS = Set.of("prompt", "negative_prompt", "seed", "size", "aspect_ratio", "random_caption");

    /**
     * @param resolution train.json's resolution (the default size)
     * @param seed train.json's seed (the default sample seed)
     * @param batchSize train.json's batch_size (how many random-caption samples an empty file makes)
     */
    public static SamplePrompts read(Path file, int resolution, long seed, int batchSize, Consumer<String> warn) {
        if (!Files.isRegularFile(file)) {
            throw new ConfigError("sample_prompts: " + file + " does not exist (allowed: a .txt or .json file)");
        }
        kind(file.toString()); // the extension first: no read of a file that is neither
        try {
            return parse(file.toString(), Files.readString(file, StandardCharsets.UTF_8), resolution, seed, batchSize, warn);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file, e);
        }
    }

    /**
     * The same from a file's content ({@code name} decides .txt or .json and names it in errors): how
     * the ranks of a cluster run parse the prompts rank 0 read and broadcast.
     */
    public static SamplePrompts parse(String name, String text, int resolution, long seed, int batchSize, Consumer<String> warn) {
        return kind(name) ? readJson(name, text, resolution, seed, batchSize, warn) : readTxt(text, resolution, seed, batchSize);
    }

    /** True for .json, false for .txt; anything else is refused. */
    private static boolean kind(String name) {
        String n = name.toLowerCase(Locale.ROOT);
        if (n.endsWith(".txt") || n.endsWith(".json")) {
            return n.endsWith(".json");
        }
        throw ConfigError.invalid("sample_prompts", Json.quote(name), "a .txt or .json file, as EveryDream2 reads");
    }

    static SamplePrompts readTxt(String text, int resolution, long seed, int batchSize) {
        List<String> lines = text.lines().toList();
        List<SampleRequest> r = new ArrayList<>();
        for (String line : lines) {
            r.add(new SampleRequest(line.strip(), "", seed, resolution, resolution, false));
        }
        if (r.isEmpty()) {
            r = randomCaptions(resolution, seed, batchSize);
        }
        return new SamplePrompts(List.copyOf(r), DEFAULT_CFGS, InferenceSampler.Kind.DDIM, 30, false, null);
    }

    static SamplePrompts readJson(String file, String text, int resolution, long seed, int batchSize, Consumer<String> warn) {
        JsonNode j = Json.parseObject(text, file);
        String at = file + " at ";
        j.fieldNames().forEachRemaining(k -> {
            if (!TOP_KEYS.contains(k)) {
                warn.accept(at + k + ": unknown key, ignored (known: " + String.join(", ", TOP_KEYS.stream().sorted().toList()) + ")");
            }
        });
        int res = j.has("resolution") ? whole(j.get("resolution"), at + "resolution", 8) : resolution;
        List<Double> cfgs = DEFAULT_CFGS;
        if (j.hasNonNull("cfgs")) {
            JsonNode c = j.get("cfgs");
            if (!c.isArray() || c.isEmpty()) {
                throw ConfigError.invalid(at + "cfgs", c.toString(), "a non-empty list of guidance scales >= 1");
            }
            List<Double> list = new ArrayList<>();
            for (JsonNode v : c) {
                if (!v.isNumber() || !(v.doubleValue() >= 1)) {
                    throw ConfigError.invalid(at + "cfgs", c.toString(), "a non-empty list of guidance scales >= 1");
                }
                list.add(v.doubleValue());
            }
            cfgs = List.copyOf(list);
        }
        InferenceSampler.Kind kind = InferenceSampler.Kind.DDIM;
        if (j.hasNonNull("scheduler")) {
            String s = j.get("scheduler").asText().toLowerCase(Locale.ROOT);
            if (s.equals("ddim") || s.equals("euler")) {
                kind = InferenceSampler.Kind.parse(s);
            } else if (OTHER_ED2_SCHEDULERS.contains(s)) {
                warn.accept(at + "scheduler: \"" + s + "\" is not implemented in DreamCluster; sampling with ddim");
            } else {
                throw ConfigError.invalid(at + "scheduler", j.get("scheduler").toString(), "ddim or euler");
            }
        }
        int steps = j.hasNonNull("num_inference_steps") ? whole(j.get("num_inference_steps"), at + "num_inference_steps", 1) : 30;
        if (steps > 1000) {
            throw ConfigError.invalid(at + "num_inference_steps", Integer.toString(steps), "a whole number in 1..1000");
        }
        boolean pretrain = j.path("generate_pretrain_samples").asBoolean(false);
        Integer every = j.hasNonNull("generate_samples_every_n_steps")
                ? whole(j.get("generate_samples_every_n_steps"), at + "generate_samples_every_n_steps", 1) : null;
        long defSeed = j.hasNonNull("seed") ? seed(j.get("seed"), at + "seed") : seed;
        int batch = j.hasNonNull("batch_size") ? whole(j.get("batch_size"), at + "batch_size", 1) : batchSize;
        List<SampleRequest> r = new ArrayList<>();
        JsonNode samples = j.get("samples");
        if (samples == null || samples.isNull()) {
            r = randomCaptions(res, defSeed, batch);
        } else {
            if (!samples.isArray()) {
                throw ConfigError.invalid(at + "samples", samples.toString(), "a list of objects");
            }
            for (int i = 0; i < samples.size(); i++) {
                JsonNode p = samples.get(i);
                String where = at + "samples[" + i + "]";
                if (!p.isObject()) {
                    throw ConfigError.invalid(where, p.toString(), "an object with prompt, negative_prompt, seed, size...");
                }
                p.fieldNames().forEachRemaining(k -> {
                    if (!SAMPLE_KEYS.contains(k)) {
                        warn.accept(where + "." + k + ": ignored (as EveryDream2 ignores it; known: "
                                + String.join(", ", SAMPLE_KEYS.stream().sorted().toList()) + ")");
                    }
                });
                int w;
                int h;
                if (p.hasNonNull("size")) {
                    JsonNode s = p.get("size");
                    if (!s.isArray() || s.size() != 2) {
                        throw ConfigError.invalid(where + ".size", s.toString(), "[width, height]");
                    }
                    w = whole(s.get(0), where + ".size", 8);
                    h = whole(s.get(1), where + ".size", 8);
                } else {
                    double aspect = p.hasNonNull("aspect_ratio") ? p.get("aspect_ratio").asDouble() : 1;
                    if (!(aspect > 0)) {
                        throw ConfigError.invalid(where + ".aspect_ratio", p.get("aspect_ratio").toString(), "a number > 0");
                    }
                    int[] wh = bestSizeForAspectRatio(aspect, res);
                    w = wh[0];
                    h = wh[1];
                }
                long s = p.hasNonNull("seed") ? seed(p.get("seed"), where + ".seed") : defSeed;
                r.add(new SampleRequest(p.path("prompt").asText(""), p.path("negative_prompt").asText(""), s, w, h,
                        p.path("random_caption").asBoolean(false)));
            }
            if (r.isEmpty()) {
                r = randomCaptions(res, defSeed, batch);
            }
        }
        return new SamplePrompts(List.copyOf(r), cfgs, kind, steps, pretrain, every);
    }

    static List<SampleRequest> randomCaptions(int resolution, long seed, int batchSize) {
        List<SampleRequest> r = new ArrayList<>();
        for (int i = 0; i < Math.min(4, batchSize); i++) {
            r.add(new SampleRequest("", "", seed, resolution, resolution, true));
        }
        return r;
    }

    /**
     * EveryDream2's get_best_size_for_aspect_ratio: among multiples of 64 in [256, 1024) whose pixel
     * count is within 128 x 64 of resolution^2, the size whose aspect is closest to the requested one.
     * When no size qualifies (resolutions outside that range) the square resolution is used.
     */
    static int[] bestSizeForAspectRatio(double aspect, int resolution) {
        long target = (long) resolution * resolution;
        int[] best = null;
        double bestErr = Double.MAX_VALUE;
        for (int w = 256; w < 1024; w += 64) {
            for (int h = 256; h < 1024; h += 64) {
                if (Math.abs((long) w * h - target) <= 128 * 64) {
                    double err = Math.abs(1 - aspect / ((double) w / h));
                    if (err < bestErr) {
                        bestErr = err;
                        best = new int[] {w, h};
                    }
                }
            }
        }
        return best != null ? best : new int[] {resolution, resolution};
    }

    private static int whole(JsonNode n, String where, int min) {
        if (n == null || !n.isNumber() || n.doubleValue() != Math.rint(n.doubleValue()) || n.doubleValue() < min
                || n.doubleValue() > Integer.MAX_VALUE) {
            throw ConfigError.invalid(where, String.valueOf(n), "a whole number >= " + min);
        }
        return n.intValue();
    }

    private static long seed(JsonNode n, String where) {
        if (!n.isIntegralNumber() || n.longValue() < -1) {
            throw ConfigError.invalid(where, n.toString(), "a whole number >= 0, or -1 for a random seed");
        }
        return n.longValue();
    }
}
