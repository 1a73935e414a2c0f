package dev.dreamcluster.config;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class JsonTest {
    @Test
    void shouldFormatNumbersLikePythonRepr() {
        assertEquals("1e-06", Json.pyRepr(1e-6));
        assertEquals("5e-07", Json.pyRepr(5e-7));
        assertEquals("1e-08", Json.pyRepr(1e-8));
        assertEquals("0.01", Json.pyRepr(0.01));
        assertEquals("0.0001", Json.pyRepr(1e-4));
        assertEquals("0.999", Json.pyRepr(0.999));
        assertEquals("1.0", Json.pyRepr(1.0));
        assertEquals("0.0", Json.pyRepr(0.0));
        assertEquals("-2.5e-07", Json.pyRepr(-2.5e-7));
        assertEquals("123456.0", Json.pyRepr(123456.0));
        assertEquals("1e+16", Json.pyRepr(1e16));
        assertEquals("1.5e-10", Json.pyRepr(1.5e-10));
        assertEquals(2e-7 * 0.5, Double.parseDouble(Json.pyRepr(2e-7 * 0.5)));
    }
}
