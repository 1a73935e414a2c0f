package dev.dreamcluster.config;

import com.fasterxml.jackson.core.JsonParseException;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.math.BigDecimal;
import java.util.Locale;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/** Strict JSON reading for user files, and Python-style number formatting for what we print. */
public final class Json {
    /** Duplicate keys are errors: a config with two "lr" keys is ambiguous, not "last one wins". */
    public static final ObjectMapper MAPPER = new ObjectMapper()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    private Json() {}

    /** Reads a JSON object from {@code file}; {@code label} names it in errors. */
    public static JsonNode readObject(Path file, String label) {
        final String text;
        try {
            text = Files.readString(file);
        } catch (NoSuchFileException e) {
            throw new ConfigError(label + ": file not found");
        } catch (IOException e) {
            throw new ConfigError(label + ": cannot read: " + e.getMessage());
        }
        return parseObject(text, label);
    }

    /** Parses a JSON object from {@code text} (a file's content); {@code label} names it in errors. */
    public static JsonNode parseObject(String text, String label) {
        final JsonNode node;
        try {
            node = MAPPER.readTree(text);
        } catch (JsonParseException e) {
            throw new ConfigError(label + ": invalid JSON at line " + e.getLocation().getLineNr()
                    + " column " + e.getLocation().getColumnNr() + ": " + firstLine(e.getOriginalMessage()));
        } catch (JsonProcessingException e) {
            throw new ConfigError(label + ": invalid JSON: " + firstLine(e.getOriginalMessage()));
        } catch (IOException e) {
            throw new ConfigError(label + ": cannot parse: " + e.getMessage());
        }
        if (node == null || !node.isObject()) {
            throw new ConfigError(label + ": must hold a JSON object {...}, found "
                    + (node == null || node.isMissingNode() ? "nothing" : node.getNodeType().toString().toLowerCase(Locale.ROOT)));
        }
        return node;
    }

    /**
     * A JSON number that must be a whole number in [min, max]: never wrapped (4294967298 is not 2)
     * nor clamped (1e400 is not 2^31-1). {@code where} names the file and key (or the flag).
     */
    public static long wholeNumber(JsonNode n, String where, long min, long max, String allowed) {
        if (n == null || !n.isNumber()) {
            throw ConfigError.invalid(where, String.valueOf(n), allowed);
        }
        BigDecimal v;
        if (n.isIntegralNumber()) {
            v = new BigDecimal(n.bigIntegerValue());
        } else {
            double d = n.doubleValue();
            if (n.isBigDecimal()) {
                v = n.decimalValue();
            } else if (Double.isFinite(d)) {
                v = new BigDecimal(d);
            } else {
                throw ConfigError.invalid(where, n.toString(), allowed);
            }
            if (v.signum() != 0 && v.stripTrailingZeros().scale() > 0) {
                throw ConfigError.invalid(where, n.toString(), allowed);
            }
        }
        if (v.compareTo(BigDecimal.valueOf(min)) < 0 || v.compareTo(BigDecimal.valueOf(max)) > 0) {
            throw ConfigError.invalid(where, n.toString(), allowed);
        }
        return v.longValueExact();
    }

    /** A path named by a config value or flag; a name the file system refuses (a NUL byte) is an error. */
    public static Path path(String value, String where) {
        try {
            return Path.of(value);
        } catch (java.nio.file.InvalidPathException e) {
            throw ConfigError.invalid(where, quote(value), "a path (" + e.getReason() + ")");
        }
    }

    /** A JSON number that must be finite (1e400 parses as infinity: an error, not a huge value). */
    public static double finiteNumber(JsonNode n, String where, String allowed) {
        if (n == null || !n.isNumber() || !Double.isFinite(n.doubleValue())) {
            throw ConfigError.invalid(where, String.valueOf(n), allowed);
        }
        return n.doubleValue();
    }

    static String firstLine(String s) {
        if (s == null) {
            return "";
        }
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }

    /** A JSON string literal for messages. */
    public static String quote(String s) {
        try {
            return MAPPER.writeValueAsString(s);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * Formats a double the way Python's {@code repr} does (shortest round-trip digits; scientific
     * notation below 1e-4 or from 1e16, with a two-digit exponent), so that {@code --json} output
     * reads like the EveryDream2 tooling users know: {@code 1e-06}, {@code 0.01}, {@code 1.0}.
     */
    public static String pyRepr(double x) {
        if (Double.isNaN(x)) {
            return "NaN";
        }
        if (Double.isInfinite(x)) {
            return x > 0 ? "Infinity" : "-Infinity";
        }
        if (x == 0) {
            return (1 / x < 0) ? "-0.0" : "0.0";
        }
        BigDecimal d = new BigDecimal(Double.toString(x)).stripTrailingZeros();
        String digits = d.unscaledValue().abs().toString();
        int exp = digits.length() - 1 - d.scale(); // x = d.ddd * 10^exp
        String sign = x < 0 ? "-" : "";
        if (exp < -4 || exp >= 16) {
            String mant = digits.length() == 1 ? digits : digits.charAt(0) + "." + digits.substring(1);
            String e = String.format("%02d", Math.abs(exp));
            return sign + mant + "e" + (exp < 0 ? "-" : "+") + e;
        }
        String plain = d.abs().toPlainString();
        if (!plain.contains(".")) {
            plain = plain + ".0";
        }
        return sign + plain;
    }
}
