package dev.dreamcluster.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** One test (or more) per rule of shared/spec/optimizer-config.md, sections 1 to 6. */
class ConfigResolverTest {
    static final String OPT = "opt.json";
    static final String TRAIN = "train.json";

    static JsonNode json(String s) {
        try {
            return Json.MAPPER.readTree(s.replace('\'', '"'));
        } catch (IOException e) {
            throw new IllegalArgumentException(e);
        }
    }

    static ResolvedTrainingConfig resolve(String train, CliFlags flags, String opt, int layers) {
        return ConfigResolver.resolve(train == null ? null : new ConfigResolver.Input(json(train), TRAIN), flags,
                opt == null ? null : new ConfigResolver.Input(json(opt), OPT), layers);
    }

    static ResolvedTrainingConfig resolve(String train, String opt) {
        return resolve(train, CliFlags.NONE, opt, 12);
    }

    static CliFlags lrFlag(double lr) {
        return new CliFlags(lr, null, null, null, null, false, false);
    }

    static ConfigError error(String train, CliFlags flags, String opt, int layers) {
        return assertThrows(ConfigError.class, () -> resolve(train, flags, opt, layers));
    }

    static ConfigError error(String opt) {
        return error(null, CliFlags.NONE, opt, 12);
    }

    // ---- section 3: defaults ----

    @Test
    void shouldUseDocumentedDefaultsWithoutAnyOptimizerFile() {
        ResolvedTrainingConfig c = resolve(null, null);
        ComponentConfig u = c.unet();
        assertEquals(OptimizerName.ADAMW8BIT, u.optimizer());
        assertEquals(1e-6, u.lr());
        assertEquals(0.9, u.beta1());
        assertEquals(0.999, u.beta2());
        assertEquals(1e-8, u.epsilon());
        assertEquals(0.01, u.weightDecay());
        assertEquals(LrSchedulerName.CONSTANT, u.lrScheduler());
        assertNull(u.lrWarmupSteps());
        assertNull(u.lrDecaySteps());
        assertEquals("default", u.sources().get("lr"));
        assertEquals(5e-7, c.textEncoder().lr(), 0);
        assertEquals("scaled 0.5 x unet", c.textEncoder().sources().get("lr"));
        assertTrue(c.warnings().stream().anyMatch(w -> w.startsWith("no lr given")), c.warnings().toString());
    }

    @Test
    void shouldTakeUnetLrFromFlagThenTrainJsonThenBase() {
        String opt = "{'base': {'lr': 3e-6}}";
        assertEquals(3e-6, resolve("{}", opt).unet().lr());
        assertEquals("optimizer.json:base", resolve("{}", opt).unet().sources().get("lr"));
        ResolvedTrainingConfig fromTrain = resolve("{'lr': 2e-6}", opt);
        assertEquals(2e-6, fromTrain.unet().lr());
        assertEquals("train.json", fromTrain.unet().sources().get("lr"));
        ResolvedTrainingConfig fromFlag = resolve("{'lr': 2e-6}", lrFlag(4e-6), opt, 12);
        assertEquals(4e-6, fromFlag.unet().lr());
        assertEquals("cli", fromFlag.unet().sources().get("lr"));
        assertTrue(fromFlag.warnings().isEmpty(), fromFlag.warnings().toString());
    }

    @Test
    void shouldLetBaseWinForScheduleKeysWithMainSettingAsFallback() {
        CliFlags flags = new CliFlags(null, "linear", 5, 500, null, false, false);
        ResolvedTrainingConfig fromBase = resolve("{}", flags,
                "{'base': {'lr_scheduler': 'cosine', 'lr_warmup_steps': 10, 'lr_decay_steps': 1000}}", 12);
        assertEquals(LrSchedulerName.COSINE, fromBase.unet().lrScheduler());
        assertEquals(10, fromBase.unet().lrWarmupSteps());
        assertEquals(1000, fromBase.unet().lrDecaySteps());
        assertEquals("optimizer.json:base", fromBase.unet().sources().get("lr_scheduler"));
        ResolvedTrainingConfig fromFlags = resolve("{'lr_scheduler': 'cosine'}", flags,
                "{'base': {'lr_scheduler': null, 'lr_warmup_steps': null}}", 12);
        assertEquals(LrSchedulerName.LINEAR, fromFlags.unet().lrScheduler());
        assertEquals(5, fromFlags.unet().lrWarmupSteps());
        assertEquals(500, fromFlags.unet().lrDecaySteps());
        assertEquals("cli", fromFlags.unet().sources().get("lr_warmup_steps"));
        ResolvedTrainingConfig fromTrain = resolve("{'lr_scheduler': 'cosine', 'lr_warmup_steps': 7}", null);
        assertEquals(LrSchedulerName.COSINE, fromTrain.unet().lrScheduler());
        assertEquals("train.json", fromTrain.unet().sources().get("lr_scheduler"));
        assertEquals(7, fromTrain.textEncoder().lrWarmupSteps());
    }

    @Test
    void shouldTreatDecayBelowOneAsAuto() {
        assertNull(resolve("{'lr_decay_steps': 0}", null).unet().lrDecaySteps());
        assertNull(resolve(null, "{'base': {'lr_decay_steps': -3}}").unet().lrDecaySteps());
        assertEquals("optimizer.json:base", resolve(null, "{'base': {'lr_decay_steps': 0}}").unet().sources().get("lr_decay_steps"));
    }

    // ---- text encoder inheritance ----

    @Test
    void shouldCopyNullOrAbsentOverridesFromResolvedUnet() {
        ResolvedTrainingConfig c = resolve(null, "{'base': {'optimizer': 'adamw', 'betas': [0.8, 0.99], 'epsilon': 1e-7,"
                + " 'weight_decay': 0.05, 'lr_scheduler': 'cosine'}, 'text_encoder_overrides': {'betas': null}}");
        ComponentConfig te = c.textEncoder();
        assertEquals(OptimizerName.ADAMW, te.optimizer());
        assertEquals(0.8, te.beta1());
        assertEquals(1e-7, te.epsilon());
        assertEquals(0.05, te.weightDecay());
        assertEquals(LrSchedulerName.COSINE, te.lrScheduler());
        assertEquals("optimizer.json:base", te.sources().get("betas"));
    }

    @Test
    void shouldKeepExplicitZerosInOverrides() {
        ComponentConfig te = resolve(null, "{'base': {'weight_decay': 0.05, 'lr_warmup_steps': 20},"
                + " 'text_encoder_overrides': {'weight_decay': 0, 'lr_warmup_steps': 0, 'betas': [0.0, 0.0]}}").textEncoder();
        assertEquals(0.0, te.weightDecay());
        assertEquals(0, te.lrWarmupSteps());
        assertEquals(0.0, te.beta1());
        assertEquals("optimizer.json:text_encoder_overrides", te.sources().get("weight_decay"));
    }

    @Test
    void shouldScaleTextEncoderLrFromUnetLr() {
        ResolvedTrainingConfig c = resolve("{'lr': 4e-6}", "{'text_encoder_lr_scale': 0.25}");
        assertEquals(1e-6, c.textEncoder().lr(), 0);
        assertEquals("scaled 0.25 x unet", c.textEncoder().sources().get("lr"));
        assertEquals(2e-6, resolve(null, "{'base': {'lr': 4e-6}}").textEncoder().lr(), 0);
    }

    @Test
    void shouldKeepExplicitTextEncoderLrOverMainLrAndIgnoreScaleWithWarning() {
        ResolvedTrainingConfig c = resolve("{'lr': 4e-6}", lrFlag(8e-6),
                "{'text_encoder_overrides': {'lr': 3e-7}, 'text_encoder_lr_scale': 0.25}", 12);
        assertEquals(8e-6, c.unet().lr());
        assertEquals(3e-7, c.textEncoder().lr());
        assertEquals("optimizer.json:text_encoder_overrides", c.textEncoder().sources().get("lr"));
        assertTrue(c.warnings().stream().anyMatch(w -> w.contains("is ignored") && w.contains("text_encoder_lr_scale")),
                c.warnings().toString());
        ResolvedTrainingConfig noScale = resolve(null, "{'base': {'lr': 1e-6}, 'text_encoder_overrides': {'lr': 3e-7}}");
        assertTrue(noScale.warnings().isEmpty(), noScale.warnings().toString());
    }

    @Test
    void shouldAcceptMisspelledScaleAliasWithWarning() {
        ResolvedTrainingConfig c = resolve(null, "{'base': {'lr': 1e-6}, 'text_encder_lr_scale': 0.2}");
        assertEquals(2e-7, c.textEncoder().lr(), 1e-20);
        assertEquals("scaled 0.2 x unet", c.textEncoder().sources().get("lr"));
        assertTrue(c.warnings().stream().anyMatch(w -> w.contains("deprecated")), c.warnings().toString());
        ResolvedTrainingConfig same = resolve(null, "{'base': {'lr': 1e-6}, 'text_encder_lr_scale': 0.2, 'text_encoder_lr_scale': 0.2}");
        assertEquals(2e-7, same.textEncoder().lr(), 1e-20);
        ConfigError e = error("{'text_encder_lr_scale': 0.2, 'text_encoder_lr_scale': 0.3}");
        assertTrue(e.getMessage().contains("text_encder_lr_scale") && e.getMessage().contains("0.2"), e.getMessage());
    }

    // ---- disabling components ----

    @Test
    void shouldRemoveDisabledComponents() {
        ResolvedTrainingConfig noTe = resolve("{'disable_textenc_training': true}", null);
        assertNull(noTe.textEncoder());
        assertTrue(noTe.textEncoderFreezing().embeddingsFrozen());
        assertEquals(12, noTe.textEncoderFreezing().frozenLayers().size());
        assertTrue(noTe.textEncoderFreezing().finalLayerNormFrozen());
        ResolvedTrainingConfig noUnet = resolve(null, new CliFlags(null, null, null, null, null, false, true), null, 12);
        assertNull(noUnet.unet());
        assertEquals(5e-7, noUnet.textEncoder().lr(), 0);
        ConfigError both = error("{'disable_unet_training': true}", new CliFlags(null, null, null, null, null, true, false), null, 12);
        assertTrue(both.getMessage().contains("--disable_textenc_training") && both.getMessage().contains("disable_unet_training"),
                both.getMessage());
    }

    // ---- section 4: optimizers ----

    @Test
    void shouldParseOptimizerNamesCaseInsensitively() {
        assertEquals(OptimizerName.LION8BIT, resolve(null, "{'base': {'optimizer': 'Lion8Bit'}}").unet().optimizer());
        ConfigError e = error("{'base': {'optimizer': 'sgd'}}");
        assertEquals("opt.json at base.optimizer: \"sgd\" is not allowed (supported optimizers: adamw, adamw8bit, lion, lion8bit)",
                e.getMessage());
    }

    @Test
    void shouldNoteEpsilonIgnoredByLionOnlyWhenWritten() {
        assertTrue(resolve(null, "{'base': {'optimizer': 'lion'}}").warnings().stream().noneMatch(w -> w.contains("epsilon")));
        ResolvedTrainingConfig c = resolve(null, "{'base': {'optimizer': 'lion', 'epsilon': 1e-8, 'lr': 1e-7}}");
        assertEquals(2, c.warnings().stream().filter(w -> w.contains("epsilon")).count(), c.warnings().toString());
        ResolvedTrainingConfig mixed = resolve(null, "{'base': {'optimizer': 'lion', 'epsilon': 0}, 'text_encoder_overrides':"
                + " {'optimizer': 'adamw', 'epsilon': 1e-6}}");
        assertEquals(1e-6, mixed.textEncoder().epsilon());
        ConfigError e = error("{'base': {'optimizer': 'lion', 'epsilon': 0}, 'text_encoder_overrides': {'optimizer': 'adamw'}}");
        assertTrue(e.getMessage().startsWith("opt.json at base.epsilon: 0.0 is not allowed"), e.getMessage());
    }

    // ---- section 5: validation ----

    @Test
    void shouldRejectBadLearningRates() {
        assertTrue(error("{'base': {'lr': 0}}").getMessage().startsWith("opt.json at base.lr: 0.0 is not allowed"));
        assertTrue(error("{'base': {'lr': -1e-6}}").getMessage().contains("lr must be a finite number > 0"));
        assertTrue(error("{'text_encoder_overrides': {'lr': -1}}").getMessage().startsWith("opt.json at text_encoder_overrides.lr"));
        assertTrue(error("{'base': {'lr': '1e-6'}}").getMessage().contains("a number"));
        assertTrue(error("{'lr': 0}", CliFlags.NONE, null, 12).getMessage().startsWith("train.json at lr: 0.0"));
        assertTrue(error(null, lrFlag(Double.NaN), null, 12).getMessage().startsWith("--lr: NaN"));
        assertTrue(error(null, lrFlag(Double.POSITIVE_INFINITY), null, 12).getMessage().startsWith("--lr: Infinity"));
    }

    @Test
    void shouldRejectBadBetas() {
        for (String b : List.of("[0.9]", "[0.9, 0.99, 0.999]", "[0.9, 1.0]", "[-0.1, 0.9]", "'0.9'", "[0.9, 'x']")) {
            ConfigError e = error("{'base': {'betas': " + b + "}}");
            assertTrue(e.getMessage().startsWith("opt.json at base.betas:") && e.getMessage().contains("[0, 1)"), e.getMessage());
        }
    }

    @Test
    void shouldRejectBadEpsilonWeightDecayWarmupAndDecay() {
        assertTrue(error("{'base': {'epsilon': 0}}").getMessage().contains("epsilon must be > 0 for adamw8bit"));
        assertTrue(error("{'base': {'epsilon': -1e-8}}").getMessage().startsWith("opt.json at base.epsilon"));
        assertTrue(error("{'base': {'weight_decay': -0.01}}").getMessage().contains("weight_decay must be a finite number >= 0"));
        assertTrue(error("{'base': {'lr_warmup_steps': -1}}").getMessage().startsWith("opt.json at base.lr_warmup_steps: -1"));
        assertTrue(error("{'base': {'lr_warmup_steps': 2.5}}").getMessage().contains("whole number"));
        ConfigError order = error("{'base': {'lr_warmup_steps': 100, 'lr_decay_steps': 50}}");
        assertTrue(order.getMessage().startsWith("opt.json at base.lr_decay_steps: 50 is not allowed")
                && order.getMessage().contains("100"), order.getMessage());
        assertEquals(50, resolve(null, "{'base': {'lr_warmup_steps': 50, 'lr_decay_steps': 50}}").unet().lrDecaySteps());
        assertTrue(error("{'lr_warmup_steps': -2}", CliFlags.NONE, null, 12).getMessage().startsWith("train.json at lr_warmup_steps"));
        CliFlags badFlag = new CliFlags(null, null, -5, null, null, false, false);
        assertTrue(error(null, badFlag, null, 12).getMessage().startsWith("--lr_warmup_steps: -5"));
    }

    @Test
    void shouldRejectUnknownSchedulerListingValidOnes() {
        ConfigError e = error("{'base': {'lr_scheduler': 'cosine_annealing'}}");
        assertTrue(e.getMessage().contains("constant, constant_with_warmup, linear, cosine, cosine_with_restarts, polynomial"),
                e.getMessage());
        CliFlags f = new CliFlags(null, "step", null, null, null, false, false);
        assertTrue(error(null, f, null, 12).getMessage().startsWith("--lr_scheduler: \"step\""));
    }

    @Test
    void shouldRequirePolynomialLrAboveItsFloor() {
        ConfigError e = error("{'base': {'lr_scheduler': 'polynomial', 'lr': 1e-7}}");
        assertTrue(e.getMessage().contains("polynomial needs lr > 1e-07"), e.getMessage());
        ConfigError te = error("{'base': {'lr_scheduler': 'polynomial', 'lr': 2e-7}}");
        assertTrue(te.getMessage().contains("text_encoder lr is 1e-07 (scaled 0.5 x unet"), te.getMessage());
        assertEquals(LrSchedulerName.POLYNOMIAL, resolve(null, "{'base': {'lr_scheduler': 'polynomial', 'lr': 4e-7}}").unet().lrScheduler());
    }

    @Test
    void shouldRejectUnknownKeysWithClosestKnownKey() {
        ConfigError top = error("{'bsae': {}}");
        assertTrue(top.getMessage().contains("unknown key \"bsae\"") && top.getMessage().contains("did you mean \"base\""),
                top.getMessage());
        ConfigError inner = error("{'base': {'weight_decy': 0.1}}");
        assertTrue(inner.getMessage().startsWith("opt.json at base.weight_decy: unknown key")
                && inner.getMessage().contains("\"weight_decay\""), inner.getMessage());
        ConfigError frz = error("{'text_encoder_freezing': {'freeze_embedings': true}}");
        assertTrue(frz.getMessage().contains("did you mean \"freeze_embeddings\""), frz.getMessage());
        ConfigError section = error("{'base': [1]}");
        assertTrue(section.getMessage().contains("a JSON object"), section.getMessage());
    }

    @Test
    void shouldWarnNotFailOnUnknownTrainJsonKeys() {
        ResolvedTrainingConfig c = resolve("{'data_root': 'x', 'max_epcohs': 3}", null);
        assertTrue(c.warnings().stream().anyMatch(w -> w.contains("\"max_epcohs\"") && w.contains("did you mean \"max_epochs\"")),
                c.warnings().toString());
        assertFalse(c.warnings().stream().anyMatch(w -> w.contains("data_root")));
    }

    // ---- section 1: files ----

    @Test
    void shouldResolveOptimizerConfigRelativeToTrainJson(@TempDir Path dir) throws IOException {
        Path sub = Files.createDirectories(dir.resolve("cfg"));
        Files.writeString(sub.resolve("train.json"), "{\"optimizer_config\": \"opt/o.json\"}");
        Files.createDirectories(sub.resolve("opt"));
        Files.writeString(sub.resolve("opt").resolve("o.json"), "{\"base\": {\"lr\": 7e-6}}");
        ResolvedTrainingConfig c = ConfigResolver.load(sub.resolve("train.json"), CliFlags.NONE, 12);
        assertEquals(7e-6, c.unet().lr());
    }

    @Test
    void shouldFailOnMissingOptimizerConfigInsteadOfFallingBack(@TempDir Path dir) throws IOException {
        Files.writeString(dir.resolve("train.json"), "{\"optimizer_config\": \"nope.json\"}");
        Files.writeString(dir.resolve("optimizer.json"), "{}");
        ConfigError e = assertThrows(ConfigError.class, () -> ConfigResolver.load(dir.resolve("train.json"), CliFlags.NONE, 12));
        assertTrue(e.getMessage().contains("optimizer_config") && e.getMessage().contains("nope.json")
                && e.getMessage().contains("does not exist"), e.getMessage());
        CliFlags flag = new CliFlags(null, null, null, null, dir.resolve("missing.json").toString(), false, false);
        ConfigError f = assertThrows(ConfigError.class, () -> ConfigResolver.load(null, flag, 12));
        assertTrue(f.getMessage().startsWith("--optimizer_config:"), f.getMessage());
    }

    @Test
    void shouldUseDefaultsWhenOptimizerConfigIsNull(@TempDir Path dir) throws IOException {
        Files.writeString(dir.resolve("train.json"), "{\"optimizer_config\": null, \"lr\": 2e-6}");
        Files.writeString(dir.resolve("optimizer.json"), "{\"base\": {\"optimizer\": \"lion\"}}");
        ResolvedTrainingConfig c = ConfigResolver.load(dir.resolve("train.json"), CliFlags.NONE, 12);
        assertEquals(OptimizerName.ADAMW8BIT, c.unet().optimizer());
        assertEquals(1e-6, c.textEncoder().lr(), 0);
    }

    @Test
    void shouldReportMalformedJsonWithFileAndLine(@TempDir Path dir) throws IOException {
        Files.writeString(dir.resolve("train.json"), "{\n  \"lr\": 1e-6,,\n}");
        ConfigError e = assertThrows(ConfigError.class, () -> ConfigResolver.load(dir.resolve("train.json"), CliFlags.NONE, 12));
        assertTrue(e.getMessage().contains("train.json: invalid JSON at line 2"), e.getMessage());
        Files.writeString(dir.resolve("dup.json"), "{\"lr\": 1e-6, \"lr\": 2e-6}");
        ConfigError d = assertThrows(ConfigError.class, () -> ConfigResolver.load(dir.resolve("dup.json"), CliFlags.NONE, 12));
        assertTrue(d.getMessage().contains("Duplicate field 'lr'"), d.getMessage());
    }

    @Test
    void shouldPrintResolvedJsonInTheDocumentedShape() throws IOException {
        ResolvedTrainingConfig c = resolve("{}", "{'base': {'optimizer': 'lion', 'lr': 1e-7},"
                + " 'text_encoder_freezing': {'freeze_front_n_layers': 3}}");
        JsonNode out = Json.MAPPER.readTree(ResolvedConfigJson.write(c));
        assertEquals(List.of("unet", "text_encoder", "text_encoder_freezing", "warnings"),
                iterable(out.fieldNames()));
        assertEquals(List.of("optimizer", "lr", "betas", "epsilon", "weight_decay", "lr_scheduler", "lr_warmup_steps",
                "lr_decay_steps", "sources"), iterable(out.get("unet").fieldNames()));
        assertTrue(out.get("unet").get("epsilon").isNull());
        assertEquals("auto", out.get("unet").get("lr_warmup_steps").asText());
        assertEquals(5e-8, out.get("text_encoder").get("lr").asDouble(), 0);
        assertEquals("[0,1,2]", out.get("text_encoder_freezing").get("frozen_layers").toString());
        ResolvedTrainingConfig disabled = resolve("{'disable_unet_training': true}", null);
        assertTrue(Json.MAPPER.readTree(ResolvedConfigJson.write(disabled)).get("unet").isNull());
        assertTrue(ResolvedConfigJson.write(resolve(null, null)).contains("\"lr\":1e-06"));
    }

    static List<String> iterable(java.util.Iterator<String> it) {
        List<String> l = new java.util.ArrayList<>();
        it.forEachRemaining(l::add);
        return l;
    }
}
