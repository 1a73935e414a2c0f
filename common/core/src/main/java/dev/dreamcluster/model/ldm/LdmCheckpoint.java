package dev.dreamcluster.model.ldm;

import com.fasterxml.jackson.databind.JsonNode;
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
import dev.dreamcluster.model.VaeConfig;
import dev.dreamcluster.safetensors.DType;
import dev.dreamcluster.safetensors.SafetensorsFile;
import dev.dreamcluster.safetensors.TensorInfo;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A single-file checkpoint ({@code .safetensors}, LDM/CompVis layout) read as a diffusers model.
 *
 * <p>Configs: from the file's {@code __metadata__} entry {@value #META} when DreamCluster wrote it
 * (exact, any architecture); otherwise from the presets, chosen by the text encoder's layout
 * ({@code cond_stage_model.transformer.*}: sd15, {@code cond_stage_model.model.*}: sd21), and every
 * tensor is then checked against that preset's names and shapes (a fine-tune of another
 * architecture is an error naming the tensor). The prediction type of an SD2 file follows A1111's
 * convention: a {@code <name>.yaml} beside it with {@code parameterization: "v"} means v_prediction,
 * a yaml without it epsilon, no yaml the sd21 preset's v_prediction (SD 2.x 768); SD1 is epsilon.
 *
 * <p>Not part of the model and ignored: EMA copies ({@code model_ema.*}), the schedule buffers
 * (betas, alphas_cumprod...), CLIP's position_ids, OpenCLIP's text_projection, logit_scale and its
 * last resblock (SD2 conditions on the penultimate layer; diffusers drops it too), and anything
 * outside the three model prefixes.
 *
 * <p>The tokenizer is not in such a file: it is taken from {@code tokenizer/} beside the file, or
 * from {@code <name>/tokenizer/} (the diffusers folder DreamCluster writes next to its single file).
 */
public final class LdmCheckpoint implements TensorSource {
    /** The metadata key holding {"unet", "text_encoder", "vae", "scheduler"} configs. */
    public static final String META = "dreamcluster_diffusers_config";
    static final List<String> PICKLED = List.of(".ckpt", ".pt", ".pth", ".bin");

    private final SafetensorsFile file;
    private final Map<String, LdmLayout.Entry> byDiffusers = new HashMap<>();
    /** LDM name actually present, for SD1 files whose CLIP keys lack "text_model.". */
    private final Map<String, String> present = new HashMap<>();

    private LdmCheckpoint(SafetensorsFile file, DiffusersFolder layout) {
        this.file = file;
        Map<String, TensorInfo> t = file.tensors();
        List<String> unused = new ArrayList<>();
        Map<String, LdmLayout.Entry> byLdm = new LinkedHashMap<>();
        for (LdmLayout.Entry e : LdmLayout.entries(layout)) {
            byDiffusers.put(e.component() + "/" + e.diffusers().name(), e);
            byLdm.putIfAbsent(e.ldmName(), e);
        }
        for (LdmLayout.Entry e : byLdm.values()) {
            String name = e.ldmName();
            TensorInfo info = t.get(name);
            if (info == null && name.startsWith(LdmLayout.CLIP_SD1 + "text_model.")) {
                name = LdmLayout.CLIP_SD1 + name.substring((LdmLayout.CLIP_SD1 + "text_model.").length());
                info = t.get(name);
            }
            if (info == null) {
                throw new ModelError(file.path() + ": missing tensor " + e.ldmName() + " " + Arrays.toString(e.ldmShape())
                        + " (the " + e.component().folder() + "'s " + e.diffusers().name() + ")");
            }
            if (info.dtype() == null) {
                throw new ModelError(file.path() + ": tensor " + name + " is not F32, F16 or BF16");
            }
            if (!Arrays.equals(info.shape(), e.ldmShape())) {
                throw new ModelError(file.path() + ": tensor " + name + " has shape " + Arrays.toString(info.shape()) + ", "
                        + describe(layout) + " needs " + Arrays.toString(e.ldmShape()));
            }
            present.put(e.ldmName(), name);
        }
        int layers = layout.textEncoder().numHiddenLayers();
        for (String k : t.keySet()) {
            if (isModelKey(k) && !present.containsValue(k) && !ignorable(k, layers)) {
                unused.add(k);
            }
        }
        if (!unused.isEmpty()) {
            throw new ModelError(file.path() + ": unexpected tensor " + unused.get(0) + " " + Arrays.toString(t.get(unused.get(0)).shape())
                    + (unused.size() > 1 ? " (and " + (unused.size() - 1) + " more)" : "") + " not in " + describe(layout));
        }
    }

    private static String describe(DiffusersFolder layout) {
        return "the " + (LdmLayout.openClip(layout) ? "SD2.x" : "SD1.x") + " architecture of its config";
    }

    private static boolean isModelKey(String k) {
        return k.startsWith(LdmLayout.UNET) || k.startsWith(LdmLayout.VAE) || k.startsWith("cond_stage_model.");
    }

    private static final Pattern RESBLOCK = Pattern.compile("cond_stage_model\\.model\\.transformer\\.resblocks\\.(\\d+)\\..*");

    private static boolean ignorable(String k, int layers) {
        if (k.endsWith("position_ids") || k.equals(LdmLayout.CLIP_SD2 + "text_projection") || k.equals(LdmLayout.CLIP_SD2 + "logit_scale")
                || k.startsWith(LdmLayout.VAE + "loss.")) {
            return true;
        }
        Matcher m = RESBLOCK.matcher(k);
        return m.matches() && Integer.parseInt(m.group(1)) >= layers;
    }

    /** Refuses pickled checkpoints (.ckpt, .pt, .pth, .bin) with one line: unpickling runs arbitrary code. */
    public static void refusePickle(Path path) {
        String n = path.getFileName().toString().toLowerCase(Locale.ROOT);
        for (String ext : PICKLED) {
            if (n.endsWith(ext)) {
                throw new ConfigError("resume_ckpt: " + Json.quote(path.toString()) + " is a pickled PyTorch checkpoint, which "
                        + "DreamCluster never loads (unpickling can run arbitrary code); allowed: a diffusers folder or a "
                        + ".safetensors single file (convert it once with a tool you trust)");
            }
        }
    }

    /** The configs of a single file, with {@code dir} the folder its tokenizer is in. */
    public static DiffusersFolder layout(Path path) {
        refusePickle(path);
        if (!path.getFileName().toString().toLowerCase(Locale.ROOT).endsWith(".safetensors")) {
            throw ConfigError.invalid("resume_ckpt", Json.quote(path.toString()), "a diffusers folder or a .safetensors single file");
        }
        SafetensorsFile f;
        try {
            f = SafetensorsFile.open(path);
        } catch (IllegalArgumentException e) {
            throw new ConfigError("resume_ckpt: " + e.getMessage());
        }
        return layout(f);
    }

    static DiffusersFolder layout(SafetensorsFile f) {
        Path tokenizerBase = tokenizerBase(f.path());
        String meta = f.metadata().get(META);
        if (meta != null) {
            try {
                JsonNode j = Json.MAPPER.readTree(meta);
                return new DiffusersFolder(tokenizerBase, UNetConfig.fromJson(j.get("unet")), ClipTextConfig.fromJson(j.get("text_encoder")),
                        VaeConfig.fromJson(j.get("vae")), DdpmScheduler.fromJson(j.get("scheduler")));
            } catch (IOException | RuntimeException e) {
                throw new ModelError(f.path() + ": metadata " + META + " does not hold the diffusers configs: " + e.getMessage());
            }
        }
        boolean sd2 = f.tensors().keySet().stream().anyMatch(k -> k.startsWith(LdmLayout.CLIP_SD2));
        boolean sd1 = f.tensors().keySet().stream().anyMatch(k -> k.startsWith(LdmLayout.CLIP_SD1));
        if (sd1 == sd2) {
            throw new ModelError(f.path() + ": not an SD1.x/SD2.x single-file checkpoint (no " + LdmLayout.CLIP_SD1 + "* or "
                    + LdmLayout.CLIP_SD2 + "* text encoder tensors)");
        }
        Presets p = sd2 ? Presets.SD21 : Presets.SD15;
        DdpmScheduler.Prediction pred = sd2 ? sd2Prediction(f.path()) : DdpmScheduler.Prediction.EPSILON;
        return new DiffusersFolder(tokenizerBase, p.unet, p.textEncoder, p.vae, DdpmScheduler.stableDiffusion(pred));
    }

    private static final Pattern V_PARAM = Pattern.compile("(?m)^\\s*parameterization:\\s*[\"']?v[\"']?\\s*$");

    static DdpmScheduler.Prediction sd2Prediction(Path file) {
        String n = file.getFileName().toString();
        Path yaml = file.resolveSibling(n.substring(0, n.length() - ".safetensors".length()) + ".yaml");
        if (!Files.isRegularFile(yaml)) {
            return DdpmScheduler.Prediction.V_PREDICTION;
        }
        try {
            return V_PARAM.matcher(Files.readString(yaml)).find() ? DdpmScheduler.Prediction.V_PREDICTION : DdpmScheduler.Prediction.EPSILON;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + yaml, e);
        }
    }

    static Path tokenizerBase(Path file) {
        Path dir = file.toAbsolutePath().getParent();
        if (Files.isDirectory(dir.resolve("tokenizer"))) {
            return dir;
        }
        String n = file.getFileName().toString();
        Path named = dir.resolve(n.substring(0, n.lastIndexOf('.')));
        if (Files.isDirectory(named.resolve("tokenizer"))) {
            return named;
        }
        throw new ConfigError("resume_ckpt: " + Json.quote(file.toString()) + " is a single file without a tokenizer; put the model's "
                + "CLIP tokenizer files (vocab.json, merges.txt, special_tokens_map.json, tokenizer_config.json) in " + dir.resolve("tokenizer")
                + " or " + named.resolve("tokenizer"));
    }

    /** Opens the file's tensors as a diffusers model, every tensor checked against its configs. */
    public static LdmCheckpoint open(Path path) {
        SafetensorsFile f = SafetensorsFile.open(path);
        return new LdmCheckpoint(f, layout(f));
    }

    @Override
    public float[] read(Component c, ParamSpec p) {
        LdmLayout.Entry e = byDiffusers.get(c + "/" + p.name());
        if (e == null) {
            throw new IllegalArgumentException(file.path() + ": no LDM tensor for " + c.folder() + "/" + p.name());
        }
        float[] all = file.readFloats(present.get(e.ldmName()));
        if (e.kind() != LdmLayout.Kind.QKV_PART) {
            return all; // a 1x1 conv [c, c, 1, 1] holds the same values in the same order as the linear [c, c]
        }
        int n = Math.toIntExact(p.numel());
        return Arrays.copyOfRange(all, e.part() * n, (e.part() + 1) * n);
    }

    /**
     * Writes {@code model}'s weights as one LDM-layout .safetensors (temporary name, fsync, rename),
     * with the diffusers configs in the metadata so DreamCluster reads any architecture back exactly.
     */
    public static void write(Path path, DiffusersFolder model, DiffusersFolder.Weights weights, DType dtype) {
        Map<String, List<LdmLayout.Entry>> byLdm = new LinkedHashMap<>();
        for (LdmLayout.Entry e : LdmLayout.entries(model)) {
            byLdm.computeIfAbsent(e.ldmName(), k -> new ArrayList<>()).add(e);
        }
        List<SafetensorsFile.Source> sources = new ArrayList<>();
        for (Map.Entry<String, List<LdmLayout.Entry>> m : byLdm.entrySet()) {
            List<LdmLayout.Entry> parts = new ArrayList<>(m.getValue());
            parts.sort((a, b) -> Integer.compare(a.part(), b.part()));
            long[] shape = parts.get(0).ldmShape();
            sources.add(new SafetensorsFile.Source() {
                @Override
                public String name() {
                    return m.getKey();
                }

                @Override
                public long[] shape() {
                    return shape.clone();
                }

                @Override
                public float[] values() {
                    if (parts.size() == 1) {
                        return weights.values(parts.get(0).component(), parts.get(0).diffusers());
                    }
                    int n = Math.toIntExact(parts.get(0).diffusers().numel());
                    float[] fused = new float[n * parts.size()];
                    for (int i = 0; i < parts.size(); i++) {
                        System.arraycopy(weights.values(parts.get(i).component(), parts.get(i).diffusers()), 0, fused, i * n, n);
                    }
                    return fused;
                }
            });
        }
        ObjectNode cfg = Json.MAPPER.createObjectNode();
        cfg.set("unet", model.unet().toJson());
        cfg.set("text_encoder", model.textEncoder().toJson());
        cfg.set("vae", model.vae().toJson());
        cfg.set("scheduler", model.scheduler().toJson());
        SafetensorsFile.write(path, sources, dtype, Map.of("format", "pt", META, cfg.toString()));
    }
}
