package dev.dreamcluster.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.config.Json;
import dev.dreamcluster.diffusion.DdpmScheduler;
import dev.dreamcluster.freeze.Component;
import dev.dreamcluster.io.AtomicFiles;
import dev.dreamcluster.safetensors.DType;
import dev.dreamcluster.safetensors.SafetensorsFile;
import dev.dreamcluster.safetensors.TensorInfo;
import dev.dreamcluster.tokenizer.TokenizerFiles;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;

/**
 * A Stable Diffusion model in diffusers layout:
 *
 * <pre>
 *   model_index.json
 *   unet/config.json          unet/diffusion_pytorch_model.safetensors
 *   text_encoder/config.json  text_encoder/model.safetensors
 *   vae/config.json           vae/diffusion_pytorch_model.safetensors
 *   scheduler/scheduler_config.json
 *   tokenizer/vocab.json, merges.txt, special_tokens_map.json, tokenizer_config.json
 * </pre>
 */
public record DiffusersFolder(Path dir, UNetConfig unet, ClipTextConfig textEncoder, VaeConfig vae, DdpmScheduler scheduler) {

    /** Buffers transformers saves beside parameters; they are not trained and are ignored on load. */
    static final List<String> IGNORED_BUFFERS = List.of("text_model.embeddings.position_ids");

    public static Path weightsFile(Path dir, Component c) {
        return dir.resolve(c.folder()).resolve(c == Component.TEXT_ENCODER ? "model.safetensors"
                : "diffusion_pytorch_model.safetensors");
    }

    /**
     * Reads the configs (not the weights) of a diffusers folder, or of a single-file LDM .safetensors
     * ({@link dev.dreamcluster.model.ldm.LdmCheckpoint#layout}; pickled files are refused).
     */
    public static DiffusersFolder read(Path dir) {
        if (Files.isRegularFile(dir)) {
            return dev.dreamcluster.model.ldm.LdmCheckpoint.layout(dir);
        }
        dev.dreamcluster.model.ldm.LdmCheckpoint.refusePickle(dir);
        if (!Files.isDirectory(dir)) {
            throw new ConfigError(dir + ": not a folder (expected a diffusers model folder)");
        }
        return new DiffusersFolder(dir,
                UNetConfig.fromJson(config(dir, "unet/config.json"), dir.resolve("unet/config.json").toString()),
                ClipTextConfig.fromJson(config(dir, "text_encoder/config.json")),
                VaeConfig.fromJson(config(dir, "vae/config.json"), dir.resolve("vae/config.json").toString()),
                DdpmScheduler.fromJson(config(dir, "scheduler/scheduler_config.json")));
    }

    private static JsonNode config(Path dir, String rel) {
        Path f = dir.resolve(rel);
        if (!Files.isRegularFile(f)) {
            throw new ConfigError(dir + ": not a diffusers model folder (no " + rel + ")");
        }
        return Json.readObject(f, f.toString());
    }

    public List<ParamSpec> manifest(Component c) {
        return switch (c) {
            case UNET -> ParamManifest.unet(unet);
            case TEXT_ENCODER -> ParamManifest.textEncoder(textEncoder);
            case VAE -> ParamManifest.vae(vae);
        };
    }

    /**
     * Opens a component's weights and checks them against its config: every parameter present with
     * the right shape, nothing unexpected (buffers such as position_ids aside). Old VAE checkpoints
     * whose attention uses query/key/value/proj_attn are accepted under the new names.
     *
     * @return parameter name (as the manifest spells it) to the header entry holding its data
     */
    public Map<String, TensorInfo> checkedTensors(Component c, SafetensorsFile file) {
        Map<String, TensorInfo> byName = new LinkedHashMap<>();
        for (TensorInfo t : file.tensors().values()) {
            if (IGNORED_BUFFERS.contains(t.name())) {
                continue;
            }
            String name = c == Component.VAE ? modernVaeName(t.name()) : t.name();
            if (byName.put(name, t) != null) {
                throw new ModelError(file.path() + ": tensor " + name + " appears twice (old and new attention names)");
            }
        }
        Map<String, TensorInfo> out = new LinkedHashMap<>();
        for (ParamSpec p : manifest(c)) {
            TensorInfo t = byName.remove(p.name());
            if (t == null) {
                throw new ModelError(file.path() + ": missing tensor " + p.name() + " " + p.shapeString()
                        + " required by " + c.folder() + "/config.json");
            }
            if (t.dtype() == null) {
                throw new ModelError(file.path() + ": tensor " + p.name() + " is not F32, F16 or BF16");
            }
            if (!Arrays.equals(squeezeVaeAttention(c, p, t.shape()), p.shape())) {
                throw new ModelError(file.path() + ": tensor " + p.name() + " has shape " + Arrays.toString(t.shape())
                        + ", config needs " + p.shapeString());
            }
            out.put(p.name(), t);
        }
        if (!byName.isEmpty()) {
            String first = byName.keySet().iterator().next();
            throw new ModelError(file.path() + ": unexpected tensor " + first + " " + Arrays.toString(byName.get(first).shape())
                    + (byName.size() > 1 ? " (and " + (byName.size() - 1) + " more)" : "") + " not in "
                    + c.folder() + "/config.json's architecture");
        }
        return out;
    }

    /** diffusers < 0.14 VAE attention: query/key/value/proj_attn became to_q/to_k/to_v/to_out.0. */
    static String modernVaeName(String n) {
        return n.replace(".attentions.0.query.", ".attentions.0.to_q.")
                .replace(".attentions.0.key.", ".attentions.0.to_k.")
                .replace(".attentions.0.value.", ".attentions.0.to_v.")
                .replace(".attentions.0.proj_attn.", ".attentions.0.to_out.0.");
    }

    /** Converted LDM VAEs store attention projections as 1x1 convs [c, c, 1, 1]. */
    private static long[] squeezeVaeAttention(Component c, ParamSpec p, long[] shape) {
        if (c == Component.VAE && p.name().contains(".attentions.0.to_") && shape.length == 4 && shape[2] == 1 && shape[3] == 1) {
            return new long[] {shape[0], shape[1]};
        }
        return shape;
    }

    // ---- writing ----

    /** Per-component tensor values: name to float32 data, for {@link #write}. */
    public interface Weights {
        float[] values(Component c, ParamSpec p);
    }

    /**
     * Writes a complete diffusers folder at {@code dir}: into a temporary sibling, then renamed, so an
     * interrupted write never leaves a half folder under the real name.
     */
    public static void write(Path dir, UNetConfig unet, ClipTextConfig te, VaeConfig vae, DdpmScheduler sched,
            boolean padWithExclamation, DType dtype, Weights weights, Path tokenizerSource) {
        write(dir, unet, te, vae, sched, padWithExclamation, dtype, weights, tokenizerSource, null);
    }

    /**
     * A trained copy of {@code source}: its weights from {@code weights}, its tokenizer, and its
     * configs kept key for key (upcast_attention, the scheduler class and options such as
     * timestep_spacing, everything DreamCluster does not read), torch_dtype set to what was written.
     */
    public static void writeTrained(Path dir, DiffusersFolder source, DType dtype, Weights weights) {
        write(dir, source.unet(), source.textEncoder(), source.vae(), source.scheduler(), false, dtype, weights,
                source.dir().resolve("tokenizer"), source.dir());
    }

    private static void write(Path dir, UNetConfig unet, ClipTextConfig te, VaeConfig vae, DdpmScheduler sched,
            boolean padWithExclamation, DType dtype, Weights weights, Path tokenizerSource, Path configSource) {
        Path abs = dir.toAbsolutePath();
        Path tmp = abs.resolveSibling(abs.getFileName() + ".tmp-" + ProcessHandle.current().pid());
        try {
            AtomicFiles.deleteRecursively(tmp);
            Files.createDirectories(tmp);
            ObjectNode index = Json.MAPPER.createObjectNode();
            index.put("_class_name", "StableDiffusionPipeline");
            index.put("_diffusers_version", "0.21.4");
            index.putArray("feature_extractor").addNull().addNull();
            index.put("requires_safety_checker", false);
            index.putArray("safety_checker").addNull().addNull();
            index.putArray("scheduler").add("diffusers").add("DDPMScheduler");
            index.putArray("text_encoder").add("transformers").add("CLIPTextModel");
            index.putArray("tokenizer").add("transformers").add("CLIPTokenizer");
            index.putArray("unet").add("diffusers").add("UNet2DConditionModel");
            index.putArray("vae").add("diffusers").add("AutoencoderKL");
            writeJson(tmp.resolve("model_index.json"), index);
            writeJson(tmp.resolve("unet/config.json"), unet.toJson());
            writeJson(tmp.resolve("text_encoder/config.json"), te.toJson());
            writeJson(tmp.resolve("vae/config.json"), vae.toJson());
            writeJson(tmp.resolve("scheduler/scheduler_config.json"), sched.toJson());
            if (configSource != null) {
                keepSourceConfigs(configSource, tmp, dtype);
            }
            if (tokenizerSource != null) {
                Files.createDirectories(tmp.resolve("tokenizer"));
                try (Stream<Path> files = Files.list(tokenizerSource)) {
                    for (Path f : files.toList()) {
                        Files.copy(f, tmp.resolve("tokenizer").resolve(f.getFileName()));
                    }
                }
            } else {
                TokenizerFiles.write(tmp.resolve("tokenizer"), te.vocabSize(), padWithExclamation);
            }
            DiffusersFolder layout = new DiffusersFolder(tmp, unet, te, vae, sched);
            for (Component c : Component.values()) {
                List<SafetensorsFile.Source> sources = new ArrayList<>();
                for (ParamSpec p : layout.manifest(c)) {
                    sources.add(new SafetensorsFile.Source() {
                        @Override
                        public String name() {
                            return p.name();
                        }

                        @Override
                        public long[] shape() {
                            return p.shape();
                        }

                        @Override
                        public float[] values() {
                            return weights.values(c, p);
                        }
                    });
                }
                SafetensorsFile.write(weightsFile(tmp, c), sources, dtype, Map.of("format", "pt"));
            }
            AtomicFiles.replaceFolder(tmp, abs); // every file fsynced (configs, tokenizer copies, weights), then renamed
        } catch (IOException | RuntimeException e) {
            try {
                AtomicFiles.deleteRecursively(tmp);
            } catch (IOException suppressed) {
                e.addSuppressed(suppressed);
            }
            if (e instanceof IOException io) {
                throw new UncheckedIOException("cannot write model folder " + dir, io);
            }
            throw (RuntimeException) e;
        }
    }

    /** The components this class writes; model_index.json entries of any other are written as [null, null]. */
    static final List<String> WRITTEN = List.of("unet", "vae", "text_encoder", "tokenizer", "scheduler");

    /** Copies the source's config files over the generated ones (see {@link #writeTrained}). */
    private static void keepSourceConfigs(Path src, Path tmp, DType dtype) throws IOException {
        String torchDtype = switch (dtype) {
            case F32 -> "float32";
            case F16 -> "float16";
            case BF16 -> "bfloat16";
        };
        for (String rel : List.of("unet/config.json", "vae/config.json", "text_encoder/config.json",
                "scheduler/scheduler_config.json")) {
            ObjectNode n = (ObjectNode) config(src, rel);
            if (n.has("torch_dtype") || rel.startsWith("text_encoder")) {
                n.put("torch_dtype", torchDtype); // transformers records the dtype of the saved weights
            }
            writeJson(tmp.resolve(rel), n);
        }
        Path index = src.resolve("model_index.json");
        if (Files.isRegularFile(index)) {
            ObjectNode n = (ObjectNode) Json.readObject(index, index.toString());
            for (var it = n.fields(); it.hasNext(); ) {
                var e = it.next();
                if (e.getValue().isArray() && e.getValue().size() == 2 && !e.getValue().get(0).isNull()
                        && !WRITTEN.contains(e.getKey())) {
                    // safety_checker, feature_extractor, ...: not copied, so not referenced
                    e.setValue(Json.MAPPER.createArrayNode().addNull().addNull());
                }
            }
            if (n.has("requires_safety_checker")) {
                n.put("requires_safety_checker", false);
            }
            writeJson(tmp.resolve("model_index.json"), n);
        }
    }

    /** A randomly initialised folder of a preset (what init-model writes). */
    public static void writeRandom(Path dir, Presets p, long seed, DType dtype) {
        DdpmScheduler sched = DdpmScheduler.stableDiffusion(p == Presets.SD21
                ? DdpmScheduler.Prediction.V_PREDICTION : DdpmScheduler.Prediction.EPSILON);
        write(dir, p.unet, p.textEncoder, p.vae, sched, p.padsWithExclamation(), dtype,
                randomInit(seed, p.unet, p.textEncoder, p.vae), null);
    }

    private static void writeJson(Path f, JsonNode n) throws IOException {
        Files.createDirectories(f.getParent());
        Files.write(f, Json.MAPPER.writerWithDefaultPrettyPrinter().writeValueAsBytes(n));
    }

    /**
     * Random initial weights as PyTorch initialises these layers: conv and linear weights and biases
     * uniform in +-1/sqrt(fan_in), norms weight 1 and bias 0, embeddings N(0, 0.02). Seeded per
     * tensor name, so every tensor is reproducible on its own.
     */
    public static Weights randomInit(long seed, UNetConfig unet, ClipTextConfig te, VaeConfig vae) {
        DiffusersFolder layout = new DiffusersFolder(Path.of("."), unet, te, vae, null);
        Map<String, long[]> shapes = new java.util.HashMap<>();
        for (Component c : Component.values()) {
            for (ParamSpec p : layout.manifest(c)) {
                shapes.put(c.folder() + "/" + p.name(), p.shape());
            }
        }
        return (c, p) -> {
            long[] s = p.shape();
            float[] v = new float[Math.toIntExact(p.numel())];
            String n = p.name();
            SplittableRandom r = new SplittableRandom(seed * 1_000_003L + (c.folder() + "/" + n).hashCode());
            if (n.contains("norm")) {
                Arrays.fill(v, n.endsWith(".weight") ? 1f : 0f);
            } else if (n.contains("embedding")) {
                for (int i = 0; i < v.length; i++) {
                    v[i] = (float) (r.nextGaussian() * 0.02);
                }
            } else {
                long[] w = s.length == 1 ? shapes.get(c.folder() + "/" + n.substring(0, n.length() - "bias".length()) + "weight") : s;
                long fanIn = w[1] * (w.length == 4 ? w[2] * w[3] : 1);
                double bound = 1.0 / Math.sqrt(fanIn);
                for (int i = 0; i < v.length; i++) {
                    v[i] = (float) r.nextDouble(-bound, bound);
                }
            }
            return v;
        };
    }
}
