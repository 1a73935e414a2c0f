package dev.dreamcluster.config;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Resolves train.json + flags + optimizer.json into a {@link ResolvedTrainingConfig}, exactly as
 * {@code shared/spec/optimizer-config.md} says. {@link #resolve} is pure: it reads no file and keeps
 * no state, so every node of a cluster that feeds it the same inputs gets the same answer.
 * {@link #load} is the file-reading front end.
 */
public final class ConfigResolver {
    public static final OptimizerName DEFAULT_OPTIMIZER = OptimizerName.ADAMW8BIT;
    public static final double DEFAULT_LR = 1e-6;
    public static final double DEFAULT_BETA1 = 0.9;
    public static final double DEFAULT_BETA2 = 0.999;
    public static final double DEFAULT_EPSILON = 1e-8;
    public static final double DEFAULT_WEIGHT_DECAY = 0.01;
    public static final LrSchedulerName DEFAULT_SCHEDULER = LrSchedulerName.CONSTANT;
    public static final double DEFAULT_TE_LR_SCALE = 0.5;

    static final String CLI = "cli";
    static final String TRAIN = "train.json";
    static final String BASE = "optimizer.json:base";
    static final String TE = "optimizer.json:text_encoder_overrides";
    static final String DEFAULT = "default";

    /** A parsed JSON file and the name errors give it (the path as the user wrote it). */
    public record Input(JsonNode json, String label) {}

    /** A value and where it came from: {@code origin} is printed, {@code where} names it in errors. */
    record Val<T>(T value, String origin, String where) {}

    private final List<String> warnings = new ArrayList<>();

    private ConfigResolver() {}

    /**
     * Reads {@code trainJson} (may be null: flags only), then the optimizer.json it or the flags name,
     * and resolves. optimizer_config from train.json is relative to train.json's folder, from the flag
     * to the working directory; a named file that does not exist is an error, never a fallback.
     */
    public static ResolvedTrainingConfig load(Path trainJson, CliFlags flags, int textEncoderLayers) {
        return resolve(ConfigFiles.read(trainJson, flags.optimizerConfig()), flags, textEncoderLayers);
    }

    /** Resolves already-read config files with the flags. */
    public static ResolvedTrainingConfig resolve(ConfigFiles files, CliFlags flags, int textEncoderLayers) {
        return resolve(files.trainInput(), flags, files.optimizerInput(), textEncoderLayers);
    }

    /** The pure resolution step: (train.json, flags, optimizer.json, text-encoder layer count). */
    public static ResolvedTrainingConfig resolve(Input train, CliFlags flags, Input opt, int textEncoderLayers) {
        if (textEncoderLayers < 1) {
            throw ConfigError.invalid("--text_encoder_layers", Integer.toString(textEncoderLayers), "a layer count >= 1");
        }
        return new ConfigResolver().run(train, flags == null ? CliFlags.NONE : flags, opt, textEncoderLayers);
    }

    private ResolvedTrainingConfig run(Input train, CliFlags flags, Input opt, int layers) {
        JsonNode trainJson = train == null ? null : train.json();
        if (train != null) {
            warnUnknownTrainKeys(train);
        }

        // Main settings: flag > train.json.
        Val<Double> mainLr = flags.lr() != null
                ? new Val<>(checkLr(flags.lr(), "--lr"), CLI, "--lr")
                : trainNumber(train, "lr", ConfigResolver::checkLr);
        Val<LrSchedulerName> mainSched = flags.lrScheduler() != null
                ? new Val<>(LrSchedulerName.parse(flags.lrScheduler(), "--lr_scheduler"), CLI, "--lr_scheduler")
                : trainScheduler(train);
        Val<Integer> mainWarmup = flags.lrWarmupSteps() != null
                ? new Val<>(checkWarmup(flags.lrWarmupSteps(), "--lr_warmup_steps"), CLI, "--lr_warmup_steps")
                : trainInt(train, "lr_warmup_steps", true);
        Val<Integer> mainDecay = flags.lrDecaySteps() != null
                ? new Val<>(autoDecay(flags.lrDecaySteps()), CLI, "--lr_decay_steps")
                : trainInt(train, "lr_decay_steps", false);
        boolean disableTe = flags.disableTextencTraining() || trainBool(train, "disable_textenc_training");
        boolean disableUnet = flags.disableUnetTraining() || trainBool(train, "disable_unet_training");
        if (disableTe && disableUnet) {
            throw new ConfigError(whichSet(flags.disableTextencTraining(), train, "disable_textenc_training") + " and "
                    + whichSet(flags.disableUnetTraining(), train, "disable_unet_training")
                    + ": both are true, so nothing would be trained (allowed: at most one of them)");
        }

        // optimizer.json sections (all optional).
        JsonNode base = null;
        JsonNode teo = null;
        JsonNode freezing = null;
        String optLabel = opt == null ? null : opt.label();
        Val<Double> scale = new Val<>(DEFAULT_TE_LR_SCALE, DEFAULT, null);
        boolean scaleExplicit = false;
        if (opt != null) {
            JsonNode root = opt.json();
            checkKeys(root, Keys.OPTIMIZER_TOP, optLabel, "");
            warnings.addAll(Ed2OptimizerKeys.notes(root, optLabel));
            base = section(root, "base", optLabel);
            teo = section(root, "text_encoder_overrides", optLabel);
            freezing = section(root, "text_encoder_freezing", optLabel);
            if (base != null) {
                checkKeys(base, Keys.SECTION, optLabel, "base.");
            }
            if (teo != null) {
                checkKeys(teo, Keys.SECTION, optLabel, "text_encoder_overrides.");
            }
            if (freezing != null) {
                checkKeys(freezing, Keys.FREEZING, optLabel, "text_encoder_freezing.");
            }
            Val<Double> right = scaleValue(root, "text_encoder_lr_scale", optLabel);
            Val<Double> alias = scaleValue(root, "text_encder_lr_scale", optLabel);
            if (alias != null) {
                if (right != null && Double.compare(right.value(), alias.value()) != 0) {
                    throw new ConfigError(optLabel + " at text_encder_lr_scale: " + Json.pyRepr(alias.value())
                            + " is not allowed (text_encoder_lr_scale is also given, as " + Json.pyRepr(right.value())
                            + "; keep only text_encoder_lr_scale)");
                }
                warnings.add(optLabel + ": \"text_encder_lr_scale\" is a deprecated misspelling; write \"text_encoder_lr_scale\"");
            }
            Val<Double> given = right != null ? right : alias;
            if (given != null) {
                scale = given;
                scaleExplicit = true;
            }
        }

        // UNet: lr = flag > train.json > base > default; schedule keys = base > main > default; rest = base > default.
        Val<OptimizerName> uOpt = or(sectionOptimizer(base, optLabel, "base"), new Val<>(DEFAULT_OPTIMIZER, DEFAULT, null));
        Val<Double> baseLr = sectionNumber(base, "lr", optLabel, "base", BASE, ConfigResolver::checkLr);
        Val<Double> uLr = mainLr != null ? mainLr : baseLr;
        boolean lrDefaulted = uLr == null;
        if (lrDefaulted) {
            uLr = new Val<>(DEFAULT_LR, DEFAULT, null);
        }
        Val<LrSchedulerName> uSched = or(sectionScheduler(base, optLabel, "base", BASE),
                or(mainSched, new Val<>(DEFAULT_SCHEDULER, DEFAULT, null)));
        Val<Integer> uWarm = or(sectionInt(base, "lr_warmup_steps", optLabel, "base", BASE, true),
                or(mainWarmup, new Val<>(null, DEFAULT, null)));
        Val<Integer> uDecay = or(sectionInt(base, "lr_decay_steps", optLabel, "base", BASE, false),
                or(mainDecay, new Val<>(null, DEFAULT, null)));
        Val<double[]> uBetas = or(sectionBetas(base, optLabel, "base", BASE),
                new Val<>(new double[] {DEFAULT_BETA1, DEFAULT_BETA2}, DEFAULT, null));
        Val<Double> uEps = or(sectionNumber(base, "epsilon", optLabel, "base", BASE, ConfigResolver::checkFinite),
                new Val<>(DEFAULT_EPSILON, DEFAULT, null));
        Val<Double> uWd = or(sectionNumber(base, "weight_decay", optLabel, "base", BASE, ConfigResolver::checkWd),
                new Val<>(DEFAULT_WEIGHT_DECAY, DEFAULT, null));

        // Text encoder: a null/absent override copies the resolved UNet value; lr is special.
        Val<OptimizerName> tOpt = or(sectionOptimizer(teo, optLabel, "text_encoder_overrides"), uOpt);
        Val<Double> teLrOverride = sectionNumber(teo, "lr", optLabel, "text_encoder_overrides", TE, ConfigResolver::checkLr);
        Val<Double> tLr;
        if (teLrOverride != null) {
            tLr = teLrOverride;
            if (scaleExplicit && !disableTe) {
                warnings.add(scale.where() + " (" + Json.pyRepr(scale.value()) + ") is ignored: text_encoder_overrides.lr ("
                        + Json.pyRepr(teLrOverride.value()) + ") sets the text encoder lr explicitly");
            }
        } else {
            tLr = new Val<>(uLr.value() * scale.value(), "scaled " + Json.pyRepr(scale.value()) + " x unet", uLr.where());
        }
        Val<LrSchedulerName> tSched = or(sectionScheduler(teo, optLabel, "text_encoder_overrides", TE), uSched);
        Val<Integer> tWarm = or(sectionInt(teo, "lr_warmup_steps", optLabel, "text_encoder_overrides", TE, true), uWarm);
        Val<Integer> tDecay = or(sectionInt(teo, "lr_decay_steps", optLabel, "text_encoder_overrides", TE, false), uDecay);
        Val<double[]> tBetas = or(sectionBetas(teo, optLabel, "text_encoder_overrides", TE), uBetas);
        Val<Double> tEps = or(sectionNumber(teo, "epsilon", optLabel, "text_encoder_overrides", TE, ConfigResolver::checkFinite), uEps);
        Val<Double> tWd = or(sectionNumber(teo, "weight_decay", optLabel, "text_encoder_overrides", TE, ConfigResolver::checkWd), uWd);

        if (lrDefaulted && (!disableUnet || (!disableTe && teLrOverride == null))) {
            warnings.add("no lr given (--lr, train.json lr or optimizer.json base.lr): using the default "
                    + Json.pyRepr(DEFAULT_LR));
        }

        TextEncoderFreezing frozen = resolveFreezing(freezing, optLabel, layers);
        ComponentConfig unet = disableUnet ? null
                : component("unet", uOpt, uLr, uBetas, uEps, uWd, uSched, uWarm, uDecay);
        ComponentConfig te = disableTe ? null
                : component("text_encoder", tOpt, tLr, tBetas, tEps, tWd, tSched, tWarm, tDecay);
        return new ResolvedTrainingConfig(unet, te, disableTe ? TextEncoderFreezing.all(layers) : frozen, warnings);
    }

    private ComponentConfig component(String name, Val<OptimizerName> opt, Val<Double> lr, Val<double[]> betas,
            Val<Double> eps, Val<Double> wd, Val<LrSchedulerName> sched, Val<Integer> warm, Val<Integer> decay) {
        if (!opt.value().isLion() && !(eps.value() > 0)) {
            throw ConfigError.invalid(eps.where(), Json.pyRepr(eps.value()),
                    "epsilon must be > 0 for " + opt.value().key() + ", used by the " + name);
        }
        if (opt.value().isLion() && !DEFAULT.equals(eps.origin())) {
            warnings.add(name + ": epsilon " + Json.pyRepr(eps.value()) + " (" + eps.where() + ") is ignored: "
                    + opt.value().key() + " does not use epsilon");
        }
        if (warm.value() != null && decay.value() != null && decay.value() < warm.value()) {
            throw ConfigError.invalid(decay.where(), decay.value().toString(),
                    "lr_decay_steps must be >= lr_warmup_steps, which is " + warm.value() + " for the " + name
                            + (warm.where() == null ? "" : " (" + warm.where() + ")"));
        }
        if (sched.value() == LrSchedulerName.POLYNOMIAL && !(lr.value() > LrSchedule.POLY_LR_END)) {
            throw ConfigError.invalid(sched.where() == null ? "lr_scheduler" : sched.where(), "\"polynomial\"",
                    "polynomial needs lr > 1e-07, but the " + name + " lr is " + Json.pyRepr(lr.value())
                            + " (" + lr.origin() + (lr.where() == null ? "" : ", " + lr.where()) + ")");
        }
        Map<String, String> sources = new LinkedHashMap<>();
        sources.put("optimizer", opt.origin());
        sources.put("lr", lr.origin());
        sources.put("betas", betas.origin());
        sources.put("epsilon", eps.origin());
        sources.put("weight_decay", wd.origin());
        sources.put("lr_scheduler", sched.origin());
        sources.put("lr_warmup_steps", warm.origin());
        sources.put("lr_decay_steps", decay.origin());
        return new ComponentConfig(opt.value(), lr.value(), betas.value()[0], betas.value()[1], eps.value(),
                wd.value(), sched.value(), warm.value(), decay.value(), sources);
    }

    // ---- freezing (spec section 6) ----

    private static TextEncoderFreezing resolveFreezing(JsonNode block, String label, int layers) {
        if (block == null) {
            return new TextEncoderFreezing(layers, false, List.of(), false);
        }
        String p = "text_encoder_freezing.";
        boolean embGiven = block.hasNonNull("freeze_embeddings");
        boolean emb = bool(block, "freeze_embeddings", label, p);
        boolean fln = bool(block, "freeze_final_layer_norm", label, p);
        boolean hasFront = block.has("freeze_front_n_layers");
        boolean hasLast = block.has("unfreeze_last_n_layers");
        if (hasFront && hasLast) {
            throw new ConfigError(label + " at " + p + "unfreeze_last_n_layers: "
                    + block.get("unfreeze_last_n_layers") + " is not allowed together with freeze_front_n_layers ("
                    + block.get("freeze_front_n_layers") + "); give only one of them");
        }
        int frozenCount = 0; // layers 0..frozenCount-1 are frozen
        String allowedRange = "the text encoder has " + layers + " layers: use " + (-layers) + ".." + layers + " or null";
        if (hasFront && !block.get("freeze_front_n_layers").isNull()) {
            String where = label + " at " + p + "freeze_front_n_layers";
            int n = integer(block.get("freeze_front_n_layers"), where, allowedRange);
            if (Math.abs((long) n) > layers) {
                throw ConfigError.invalid(where, Integer.toString(n), allowedRange);
            }
            frozenCount = n >= 0 ? n : layers + n;
        }
        if (hasLast && !block.get("unfreeze_last_n_layers").isNull()) {
            String where = label + " at " + p + "unfreeze_last_n_layers";
            String allowed = "the text encoder has " + layers + " layers: use 1.." + layers + " or null";
            int k = integer(block.get("unfreeze_last_n_layers"), where, allowed);
            if (k < 1 || k > layers) {
                throw ConfigError.invalid(where, Integer.toString(k), allowed);
            }
            frozenCount = layers - k;
        }
        // EveryDream2: freezing any layer freezes the embeddings too, unless freeze_embeddings says otherwise
        return new TextEncoderFreezing(layers, embGiven ? emb : frozenCount > 0, TextEncoderFreezing.range(0, frozenCount), fln);
    }

    private static boolean bool(JsonNode block, String key, String label, String prefix) {
        JsonNode n = block.get(key);
        if (n == null || n.isNull()) {
            return false;
        }
        if (!n.isBoolean()) {
            throw ConfigError.invalid(label + " at " + prefix + key, n.toString(), "true or false");
        }
        return n.booleanValue();
    }

    // ---- train.json values ----

    private void warnUnknownTrainKeys(Input train) {
        warnings.addAll(TrainJsonKeys.notes(train.json(), train.label()));
        for (Iterator<String> it = train.json().fieldNames(); it.hasNext(); ) {
            String k = it.next();
            if (!Keys.TRAIN.contains(k) && !TrainJsonKeys.known().contains(k)) {
                warnings.add(train.label() + ": unknown key " + Json.quote(k) + " is ignored"
                        + Keys.didYouMean(k, Keys.TRAIN));
            }
        }
    }

    private static Val<Double> trainNumber(Input train, String key, Check check) {
        if (train == null || !train.json().hasNonNull(key)) {
            return null;
        }
        String where = train.label() + " at " + key;
        return new Val<>(check.apply(number(train.json().get(key), where), where), TRAIN, where);
    }

    private static Val<LrSchedulerName> trainScheduler(Input train) {
        if (train == null || !train.json().hasNonNull("lr_scheduler")) {
            return null;
        }
        String where = train.label() + " at lr_scheduler";
        return new Val<>(LrSchedulerName.parse(text(train.json().get("lr_scheduler"), where, "a scheduler name: "
                + LrSchedulerName.allowed()), where), TRAIN, where);
    }

    private static Val<Integer> trainInt(Input train, String key, boolean warmup) {
        if (train == null || !train.json().hasNonNull(key)) {
            return null;
        }
        String where = train.label() + " at " + key;
        int v = integer(train.json().get(key), where, warmup ? "a whole number >= 0" : "a whole number (< 1 means auto)");
        return new Val<>(warmup ? Integer.valueOf(checkWarmup(v, where)) : autoDecay(v), TRAIN, where);
    }

    private static boolean trainBool(Input train, String key) {
        if (train == null || !train.json().hasNonNull(key)) {
            return false;
        }
        JsonNode n = train.json().get(key);
        if (!n.isBoolean()) {
            throw ConfigError.invalid(train.label() + " at " + key, n.toString(), "true or false");
        }
        return n.booleanValue();
    }

    private static String whichSet(boolean flag, Input train, String key) {
        return flag ? "--" + key : train.label() + " at " + key;
    }

    // ---- optimizer.json values ----

    private static void checkKeys(JsonNode obj, Set<String> known, String label, String prefix) {
        for (Iterator<String> it = obj.fieldNames(); it.hasNext(); ) {
            String k = it.next();
            if (!known.contains(k)) {
                throw new ConfigError(label + " at " + prefix + k + ": unknown key " + Json.quote(k)
                        + Keys.didYouMean(k, known) + "; known keys here: " + Keys.known(known));
            }
        }
    }

    private static JsonNode section(JsonNode root, String key, String label) {
        JsonNode n = root.get(key);
        if (n == null || n.isNull()) {
            return null;
        }
        if (!n.isObject()) {
            throw ConfigError.invalid(label + " at " + key, n.toString(), "a JSON object {...} or null");
        }
        return n;
    }

    private static Val<Double> scaleValue(JsonNode root, String key, String label) {
        JsonNode n = root.get(key);
        if (n == null || n.isNull()) {
            return null;
        }
        String where = label + " at " + key;
        double v = number(n, where);
        if (!(v > 0) || !Double.isFinite(v)) {
            throw ConfigError.invalid(where, Json.pyRepr(v), "a finite number > 0");
        }
        return new Val<>(v, key, where);
    }

    private static Val<OptimizerName> sectionOptimizer(JsonNode sec, String label, String name) {
        if (sec == null || !sec.hasNonNull("optimizer")) {
            return null;
        }
        String where = label + " at " + name + ".optimizer";
        String s = text(sec.get("optimizer"), where, "an optimizer name: " + OptimizerName.allowed());
        return new Val<>(OptimizerName.parse(s, where), name.equals("base") ? BASE : TE, where);
    }

    private static Val<LrSchedulerName> sectionScheduler(JsonNode sec, String label, String name, String origin) {
        if (sec == null || !sec.hasNonNull("lr_scheduler")) {
            return null;
        }
        String where = label + " at " + name + ".lr_scheduler";
        String s = text(sec.get("lr_scheduler"), where, "a scheduler name: " + LrSchedulerName.allowed());
        return new Val<>(LrSchedulerName.parse(s, where), origin, where);
    }

    private static Val<Double> sectionNumber(JsonNode sec, String key, String label, String name, String origin, Check check) {
        if (sec == null || !sec.hasNonNull(key)) {
            return null;
        }
        String where = label + " at " + name + "." + key;
        return new Val<>(check.apply(number(sec.get(key), where), where), origin, where);
    }

    private static Val<Integer> sectionInt(JsonNode sec, String key, String label, String name, String origin, boolean warmup) {
        if (sec == null || !sec.hasNonNull(key)) {
            return null;
        }
        String where = label + " at " + name + "." + key;
        int v = integer(sec.get(key), where, warmup ? "a whole number >= 0" : "a whole number (< 1 means auto)");
        return new Val<>(warmup ? Integer.valueOf(checkWarmup(v, where)) : autoDecay(v), origin, where);
    }

    private static Val<double[]> sectionBetas(JsonNode sec, String label, String name, String origin) {
        if (sec == null || !sec.hasNonNull("betas")) {
            return null;
        }
        String where = label + " at " + name + ".betas";
        JsonNode n = sec.get("betas");
        String allowed = "exactly two numbers, each in [0, 1)";
        if (!n.isArray() || n.size() != 2 || !n.get(0).isNumber() || !n.get(1).isNumber()) {
            throw ConfigError.invalid(where, n.toString(), allowed);
        }
        double b1 = n.get(0).doubleValue();
        double b2 = n.get(1).doubleValue();
        if (!(b1 >= 0 && b1 < 1) || !(b2 >= 0 && b2 < 1)) {
            throw ConfigError.invalid(where, "[" + Json.pyRepr(b1) + ", " + Json.pyRepr(b2) + "]", allowed);
        }
        return new Val<>(new double[] {b1, b2}, origin, where);
    }

    // ---- scalar checks ----

    @FunctionalInterface
    interface Check {
        double apply(double v, String where);
    }

    static double checkLr(double v, String where) {
        if (!(v > 0) || !Double.isFinite(v)) {
            throw ConfigError.invalid(where, Json.pyRepr(v), "lr must be a finite number > 0");
        }
        return v;
    }

    static double checkWd(double v, String where) {
        if (!(v >= 0) || !Double.isFinite(v)) {
            throw ConfigError.invalid(where, Json.pyRepr(v), "weight_decay must be a finite number >= 0");
        }
        return v;
    }

    static double checkFinite(double v, String where) {
        if (!Double.isFinite(v)) {
            throw ConfigError.invalid(where, Json.pyRepr(v), "a finite number");
        }
        return v;
    }

    static int checkWarmup(int v, String where) {
        if (v < 0) {
            throw ConfigError.invalid(where, Integer.toString(v), "lr_warmup_steps must be a whole number >= 0");
        }
        return v;
    }

    /** lr_decay_steps below 1 means "derive from the run length" (EveryDream2's rule). */
    static Integer autoDecay(int v) {
        return v < 1 ? null : v;
    }

    static double number(JsonNode n, String where) {
        return JsonFields.valueNumber(n, where);
    }

    static int integer(JsonNode n, String where, String allowed) {
        return JsonFields.valueInt(n, where, allowed);
    }

    static String text(JsonNode n, String where, String allowed) {
        return JsonFields.valueText(n, where, allowed);
    }

    private static <T> Val<T> or(Val<T> a, Val<T> b) {
        return a != null ? a : b;
    }
}
