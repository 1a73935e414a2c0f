package dev.dreamcluster.config;

import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.util.List;

/**
 * The one JSON form of a {@link ResolvedTrainingConfig}: printed by {@code resolve --json}, logged at
 * start-up and written into every checkpoint. Numbers are printed as Python would ({@code 1e-06}).
 */
public final class ResolvedConfigJson {
    private ResolvedConfigJson() {}

    public static String write(ResolvedTrainingConfig c) {
        StringWriter out = new StringWriter();
        try (JsonGenerator g = Json.MAPPER.getFactory().createGenerator(out)) {
            g.writeStartObject();
            g.writeFieldName("unet");
            component(g, c.unet());
            g.writeFieldName("text_encoder");
            component(g, c.textEncoder());
            TextEncoderFreezing f = c.textEncoderFreezing();
            g.writeObjectFieldStart("text_encoder_freezing");
            g.writeNumberField("num_layers", f.numLayers());
            g.writeBooleanField("embeddings_frozen", f.embeddingsFrozen());
            g.writeArrayFieldStart("frozen_layers");
            for (int i : f.frozenLayers()) {
                g.writeNumber(i);
            }
            g.writeEndArray();
            g.writeBooleanField("final_layer_norm_frozen", f.finalLayerNormFrozen());
            g.writeEndObject();
            g.writeArrayFieldStart("warnings");
            for (String w : c.warnings()) {
                g.writeString(w);
            }
            g.writeEndArray();
            g.writeEndObject();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out.toString();
    }

    private static void component(JsonGenerator g, ComponentConfig c) throws IOException {
        if (c == null) {
            g.writeNull();
            return;
        }
        g.writeStartObject();
        g.writeStringField("optimizer", c.optimizer().key());
        g.writeFieldName("lr");
        g.writeNumber(Json.pyRepr(c.lr()));
        g.writeArrayFieldStart("betas");
        g.writeNumber(Json.pyRepr(c.beta1()));
        g.writeNumber(Json.pyRepr(c.beta2()));
        g.writeEndArray();
        g.writeFieldName("epsilon");
        if (c.optimizer().isLion()) {
            g.writeNull();
        } else {
            g.writeNumber(Json.pyRepr(c.epsilon()));
        }
        g.writeFieldName("weight_decay");
        g.writeNumber(Json.pyRepr(c.weightDecay()));
        g.writeStringField("lr_scheduler", c.lrScheduler().key());
        steps(g, "lr_warmup_steps", c.lrWarmupSteps());
        steps(g, "lr_decay_steps", c.lrDecaySteps());
        g.writeObjectFieldStart("sources");
        for (String k : ComponentConfig.KEYS) {
            g.writeStringField(k, c.sources().get(k));
        }
        g.writeEndObject();
        g.writeEndObject();
    }

    private static void steps(JsonGenerator g, String name, Integer v) throws IOException {
        if (v == null) {
            g.writeStringField(name, "auto");
        } else {
            g.writeNumberField(name, v);
        }
    }

    /**
     * The inverse of {@link #write}: how a worker receives the coordinator's resolution in the run
     * plan. Sources and warnings travel too, so a checkpoint written by any rank says the same.
     */
    public static ResolvedTrainingConfig read(JsonNode n) {
        JsonNode f = n.path("text_encoder_freezing");
        List<Integer> frozen = new java.util.ArrayList<>();
        f.path("frozen_layers").forEach(x -> frozen.add(x.intValue()));
        List<String> warnings = new java.util.ArrayList<>();
        n.path("warnings").forEach(x -> warnings.add(x.asText()));
        return new ResolvedTrainingConfig(readComponent(n.get("unet")), readComponent(n.get("text_encoder")),
                new TextEncoderFreezing(f.path("num_layers").intValue(), f.path("embeddings_frozen").booleanValue(), frozen,
                        f.path("final_layer_norm_frozen").booleanValue()),
                warnings);
    }

    private static ComponentConfig readComponent(JsonNode c) {
        if (c == null || c.isNull()) {
            return null;
        }
        java.util.Map<String, String> sources = new java.util.LinkedHashMap<>();
        c.path("sources").fields().forEachRemaining(e -> sources.put(e.getKey(), e.getValue().asText()));
        OptimizerName opt = OptimizerName.parse(c.path("optimizer").asText(), "run plan optimizer");
        // Lion prints epsilon as null; the resolved value is the default then (unused by Lion)
        double eps = c.path("epsilon").isNumber() ? c.path("epsilon").doubleValue() : ConfigResolver.DEFAULT_EPSILON;
        return new ComponentConfig(opt, c.path("lr").doubleValue(), c.path("betas").path(0).doubleValue(),
                c.path("betas").path(1).doubleValue(), eps, c.path("weight_decay").doubleValue(),
                LrSchedulerName.parse(c.path("lr_scheduler").asText(), "run plan lr_scheduler"), steps(c.get("lr_warmup_steps")),
                steps(c.get("lr_decay_steps")), sources);
    }

    private static Integer steps(JsonNode v) {
        return v == null || !v.isNumber() ? null : v.intValue();
    }

    /** A readable table: one row per value with where it came from, then the warnings. */
    public static String table(ResolvedTrainingConfig c) {
        StringBuilder b = new StringBuilder();
        String fmt = "%-14s %-16s %-26s %s%n";
        b.append(String.format(fmt, "component", "key", "value", "source"));
        for (var e : List.of(java.util.Map.entry("unet", java.util.Optional.ofNullable(c.unet())),
                java.util.Map.entry("text_encoder", java.util.Optional.ofNullable(c.textEncoder())))) {
            ComponentConfig cc = e.getValue().orElse(null);
            if (cc == null) {
                b.append(String.format(fmt, e.getKey(), "-", "disabled (not trained)", "cli/train.json"));
                continue;
            }
            for (String k : ComponentConfig.KEYS) {
                b.append(String.format(fmt, e.getKey(), k, value(cc, k), cc.sources().get(k)));
            }
        }
        TextEncoderFreezing f = c.textEncoderFreezing();
        b.append(String.format(fmt, "text_encoder", "num_layers", f.numLayers(), "model"));
        b.append(String.format(fmt, "text_encoder", "embeddings", f.embeddingsFrozen() ? "frozen" : "trained", "freezing"));
        b.append(String.format(fmt, "text_encoder", "frozen_layers", layers(f.frozenLayers()), "freezing"));
        b.append(String.format(fmt, "text_encoder", "final_layer_norm", f.finalLayerNormFrozen() ? "frozen" : "trained",
                "freezing"));
        if (c.warnings().isEmpty()) {
            b.append("no warnings\n");
        }
        for (String w : c.warnings()) {
            b.append("warning: ").append(w).append('\n');
        }
        return b.toString();
    }

    private static String value(ComponentConfig c, String key) {
        return switch (key) {
            case "optimizer" -> c.optimizer().key();
            case "lr" -> Json.pyRepr(c.lr());
            case "betas" -> "[" + Json.pyRepr(c.beta1()) + ", " + Json.pyRepr(c.beta2()) + "]";
            case "epsilon" -> c.optimizer().isLion() ? "unused (lion)" : Json.pyRepr(c.epsilon());
            case "weight_decay" -> Json.pyRepr(c.weightDecay());
            case "lr_scheduler" -> c.lrScheduler().key();
            case "lr_warmup_steps" -> c.lrWarmupSteps() == null ? "auto" : c.lrWarmupSteps().toString();
            case "lr_decay_steps" -> c.lrDecaySteps() == null ? "auto (1.5 x run length)" : c.lrDecaySteps().toString();
            default -> throw new IllegalArgumentException(key);
        };
    }

    private static String layers(List<Integer> l) {
        if (l.isEmpty()) {
            return "none";
        }
        return l.size() == 1 ? "" + l.get(0) : l.get(0) + ".." + l.get(l.size() - 1) + " (" + l.size() + ")";
    }
}
