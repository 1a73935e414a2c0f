package dev.dreamcluster.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** Numbers that do not fit their type are errors: never wrapped, never clamped. */
class JsonNumbersTest {
    static long whole(String json, long min, long max) throws Exception {
        return Json.wholeNumber(Json.MAPPER.readTree(json), "f.json at k", min, max, "a whole number in range");
    }

    @Test
    void shouldRefuseWhatWouldWrapOrClamp() throws Exception {
        assertEquals(7, whole("7", 0, 10));
        assertEquals(100, whole("1e2", 0, 1000));
        assertEquals(2, whole("2.0", 0, 10));
        assertEquals(Long.MAX_VALUE, whole("9223372036854775807", Long.MIN_VALUE, Long.MAX_VALUE));
        for (String bad : new String[] {"4294967298", "1e400", "-1e400", "2.5", "\"4\"", "true", "null", "[]",
            "9223372036854775808", "-1", "11"}) {
            ConfigError e = assertThrows(ConfigError.class, () -> whole(bad, 0, 10), bad);
            assertTrue(e.getMessage().startsWith("f.json at k: "), e.getMessage());
        }
        assertThrows(ConfigError.class, () -> Json.finiteNumber(Json.MAPPER.readTree("1e400"), "w", "a finite number"));
        assertEquals(0.5, Json.finiteNumber(Json.MAPPER.readTree("0.5"), "w", "a finite number"));
    }
}
