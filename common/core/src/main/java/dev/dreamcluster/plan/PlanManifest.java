package dev.dreamcluster.plan;

import com.fasterxml.jackson.databind.JsonNode;
import dev.dreamcluster.config.RunConfig;
import dev.dreamcluster.config.TrainConfig;
import dev.dreamcluster.freeze.Component;
import dev.dreamcluster.freeze.FreezePlan;
import dev.dreamcluster.model.DiffusersFolder;
import dev.dreamcluster.layout.ParamLayout;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.stream.Stream;

/**
 * The content-addressed description of a run that every node must reproduce: sorted {@code key ->
 * value} entries whose SHA-256 is the plan hash.
 *
 * <pre>
 *   config.batch_size        = 4                 every training key that changes the numbers
 *   config.unet.lr           = 0.0005            each component's resolved optimizer settings
 *   config.text_encoder_freezing.frozen_layers = [0,1]
 *   layout.unet              = sha256(names, shapes, dtypes, trainable mask, shard cuts for this world)
 *   world                    = 2
 *   weights.unet/diffusion_pytorch_model.safetensors = sha256 of the file (cached beside it)
 *   data.folder/img_1.png    = size 1234         images: relative path and size
 *   data.folder/img_1.txt    = sha256 ...        every other file (captions, multiply.txt, yaml): content
 * </pre>
 *
 * Paths on a node never enter it (each node may keep its copies anywhere); a worker compares its
 * own manifest with the coordinator's and names the entries that differ. Above {@link
 * #MAX_DATA_FILES} data files, data entries are per folder (the digest of its files' entries) so the
 * plan stays small enough for one cluster message.
 */
public final class PlanManifest {
    static final int MAX_DATA_FILES = 1500;
    private static final Set<String> IMAGE_EXTENSIONS = Set.of("jpg", "jpeg", "png", "webp", "bmp");

    private final SortedMap<String, String> entries;

    private PlanManifest(SortedMap<String, String> entries) {
        this.entries = entries;
    }

    /**
     * The manifest of {@code run} on this node: its model folder (or, when resuming, the whole
     * checkpoint: model, optimizer state, trainer state) and its data folder, as the config names them.
     *
     * @param resume the checkpoint the run continues from, or null
     */
    public static PlanManifest of(RunConfig run, ParamLayout layout, Path resume) {
        SortedMap<String, String> e = new TreeMap<>();
        addConfig(e, run);
        e.put("world", Integer.toString(layout.world()));
        for (Component c : Component.values()) {
            e.put("layout." + c.folder(), ContentDigest.sha256(layout.describe(c)));
        }
        if (resume == null) {
            addFiles(e, "weights.", run.train().model(), false);
        } else {
            addFiles(e, "checkpoint.", resume, false);
        }
        addFiles(e, "data.", run.train().dataRoot(), true);
        return new PlanManifest(e);
    }

    /** The manifest of {@code run} for a world of {@code world} ranks: reads the model's configs, hashes its files. */
    public static PlanManifest compute(RunConfig run, int world, Path resume) {
        DiffusersFolder model = DiffusersFolder.read(resume != null ? resume.resolve("model") : run.train().model());
        return of(run, ParamLayout.of(model, FreezePlan.of(run.optimizer()), world), resume);
    }

    /** Rebuilds a manifest sent in a plan ({@link #lines}). */
    public static PlanManifest fromLines(List<String> lines) {
        SortedMap<String, String> e = new TreeMap<>();
        for (String l : lines) {
            int tab = l.indexOf('\t');
            if (tab < 0) {
                throw new IllegalArgumentException("not a manifest line: " + l);
            }
            e.put(l.substring(0, tab), l.substring(tab + 1));
        }
        return new PlanManifest(e);
    }

    /** {@code key<TAB>value}, sorted by key. */
    public List<String> lines() {
        List<String> l = new ArrayList<>(entries.size());
        entries.forEach((k, v) -> l.add(k + '\t' + v));
        return l;
    }

    public Map<String, String> entries() {
        return java.util.Collections.unmodifiableSortedMap(entries);
    }

    /** The plan hash: SHA-256 of the sorted lines. */
    public String hash() {
        return ContentDigest.sha256(String.join("\n", lines()) + "\n");
    }

    /**
     * What differs between the coordinator's manifest and this node's, in words, at most {@code max}
     * entries (then a count): empty when they are equal.
     */
    public String differences(PlanManifest coordinator, int max) {
        List<String> out = new ArrayList<>();
        int n = 0;
        Set<String> keys = new java.util.TreeSet<>(entries.keySet());
        keys.addAll(coordinator.entries.keySet());
        for (String k : keys) {
            String theirs = coordinator.entries.get(k);
            String mine = entries.get(k);
            if (java.util.Objects.equals(theirs, mine)) {
                continue;
            }
            if (n++ < max) {
                out.add(describe(k, theirs, mine));
            }
        }
        if (n > max) {
            out.add((n - max) + " more");
        }
        return String.join("; ", out);
    }

    private static String describe(String key, String theirs, String mine) {
        String what;
        if (key.startsWith("config.")) {
            what = "config key " + key.substring("config.".length());
        } else if (key.startsWith("weights.")) {
            what = "model file " + key.substring("weights.".length());
        } else if (key.startsWith("checkpoint.")) {
            what = "checkpoint file " + key.substring("checkpoint.".length());
        } else if (key.startsWith("data.")) {
            what = "data " + (key.endsWith("/") ? "folder " : "file ") + key.substring("data.".length());
        } else if (key.startsWith("layout.")) {
            what = "parameter layout of the " + key.substring("layout.".length()) + " (names, shapes, trainable mask or shard cuts)";
        } else {
            what = key;
        }
        if (theirs == null) {
            return what + " exists only here";
        }
        if (mine == null) {
            return what + " is missing here";
        }
        return what + ": coordinator " + shorten(theirs) + ", here " + shorten(mine);
    }

    private static String shorten(String v) {
        return v.startsWith("sha256 ") ? v.substring(0, Math.min(v.length(), 19)) + "..." : v;
    }

    private static void addConfig(SortedMap<String, String> e, RunConfig run) {
        JsonNode n = run.toJsonNode();
        for (Iterator<Map.Entry<String, JsonNode>> it = n.path("train_config").fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> f = it.next();
            if (!TrainConfig.LOCAL_KEYS.contains(f.getKey())) {
                e.put("config." + f.getKey(), canonical(f.getValue()));
            }
        }
        // the precision changes the numbers; the device and the collective are each node's own
        for (Iterator<Map.Entry<String, JsonNode>> it = n.path("compute_config").fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> f = it.next();
            if (!f.getKey().equals("device") && !f.getKey().equals("collective")) {
                e.put("config.compute." + f.getKey(), canonical(f.getValue()));
            }
        }
        JsonNode opt = n.path("optimizer_config");
        for (String c : List.of("unet", "text_encoder", "text_encoder_freezing")) {
            JsonNode section = opt.path(c);
            if (section.isNull() || section.isMissingNode()) {
                e.put("config." + c, "null (not trained)");
                continue;
            }
            for (Iterator<Map.Entry<String, JsonNode>> it = section.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> f = it.next();
                if (!f.getKey().equals("sources")) {
                    e.put("config." + c + "." + f.getKey(), canonical(f.getValue()));
                }
            }
        }
    }

    /** A JSON value as the user would write it: numbers as Python prints them (0.0002, 1e-06). */
    private static String canonical(JsonNode v) {
        if (v.isFloatingPointNumber()) {
            return dev.dreamcluster.config.Json.pyRepr(v.doubleValue());
        }
        if (v.isArray()) {
            List<String> items = new ArrayList<>();
            v.forEach(x -> items.add(canonical(x)));
            return "[" + String.join(",", items) + "]";
        }
        return v.toString();
    }

    /** Every regular file under {@code root} except hidden ones (digest caches, editors' files). */
    private static void addFiles(SortedMap<String, String> e, String prefix, Path root, boolean data) {
        List<Path> files;
        try (Stream<Path> s = Files.walk(root)) {
            files = s.filter(Files::isRegularFile).filter(p -> !hidden(root.relativize(p))).sorted().toList();
        } catch (IOException ex) {
            throw new UncheckedIOException("cannot list " + root, ex);
        }
        SortedMap<String, String> mine = new TreeMap<>();
        for (Path p : files) {
            String rel = root.relativize(p).toString().replace('\\', '/');
            mine.put(rel, data && isImage(p) ? "size " + size(p) : "sha256 " + ContentDigest.sha256(p));
        }
        if (!data || mine.size() <= MAX_DATA_FILES) {
            mine.forEach((k, v) -> e.put(prefix + k, v));
            return;
        }
        SortedMap<String, StringBuilder> folders = new TreeMap<>();
        mine.forEach((k, v) -> {
            int slash = k.lastIndexOf('/');
            folders.computeIfAbsent(slash < 0 ? "" : k.substring(0, slash + 1), f -> new StringBuilder())
                    .append(k).append('\t').append(v).append('\n');
        });
        folders.forEach((f, b) -> e.put(prefix + (f.isEmpty() ? "./" : f), "sha256 " + ContentDigest.sha256(b.toString())));
    }

    private static boolean hidden(Path rel) {
        for (Path part : rel) {
            if (part.toString().startsWith(".")) {
                return true;
            }
        }
        return false;
    }

    private static boolean isImage(Path p) {
        String n = p.getFileName().toString();
        int dot = n.lastIndexOf('.');
        return dot > 0 && IMAGE_EXTENSIONS.contains(n.substring(dot + 1).toLowerCase(Locale.ROOT));
    }

    private static long size(Path p) {
        try {
            return Files.size(p);
        } catch (IOException ex) {
            throw new UncheckedIOException("cannot read " + p, ex);
        }
    }
}
