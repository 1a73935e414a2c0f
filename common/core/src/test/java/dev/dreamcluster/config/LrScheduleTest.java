package dev.dreamcluster.config;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** Spec section 3: schedule multipliers in optimizer updates, warmup from 1/w, auto warmup/decay. */
class LrScheduleTest {
    static final double E = 1e-12;

    @Test
    void shouldDeriveAutoWarmupAndDecayFromRunLength() {
        ComponentConfig c = ConfigResolverTest.resolve(null, null).unet();
        LrSchedule s = c.schedule(1000);
        assertEquals(1500, s.decay());
        assertEquals(30, s.warmup());
        LrSchedule odd = c.schedule(333);
        assertEquals(499, odd.decay()); // floor(1.5 * 333)
        assertEquals(9, odd.warmup()); // floor(499 / 50)
        ComponentConfig explicit = ConfigResolverTest.resolve(null, "{'base': {'lr_warmup_steps': 0, 'lr_decay_steps': 80}}").unet();
        assertEquals(0, explicit.schedule(1000).warmup());
        assertEquals(80, explicit.schedule(1000).decay());
    }

    @Test
    void shouldNeverTakeTheFirstWarmupStepAtZero() {
        LrSchedule s = new LrSchedule(LrSchedulerName.CONSTANT_WITH_WARMUP, 1e-4, 4, 100);
        assertEquals(0.25, s.multiplier(0), E);
        assertEquals(0.5, s.multiplier(1), E);
        assertEquals(1.0, s.multiplier(3), E);
        assertEquals(1.0, s.multiplier(4), E);
        assertEquals(1.0, s.multiplier(1000), E);
        assertEquals(1.0, new LrSchedule(LrSchedulerName.CONSTANT, 1e-4, 4, 100).multiplier(0), E);
    }

    @Test
    void shouldDecayLinearlyToZero() {
        LrSchedule s = new LrSchedule(LrSchedulerName.LINEAR, 1e-4, 10, 110);
        assertEquals(0.1, s.multiplier(0), E);
        assertEquals(1.0, s.multiplier(10), E);
        assertEquals(0.5, s.multiplier(60), E);
        assertEquals(0.0, s.multiplier(110), E);
        assertEquals(0.0, s.multiplier(500), E);
    }

    @Test
    void shouldFollowHalfCosineAndStayAtTheEnd() {
        LrSchedule s = new LrSchedule(LrSchedulerName.COSINE, 1e-4, 0, 100);
        assertEquals(1.0, s.multiplier(0), E);
        assertEquals(0.5, s.multiplier(50), E);
        assertEquals(0.0, s.multiplier(100), E);
        assertEquals(0.0, s.multiplier(150), E); // min(1, progress): no second wave
        LrSchedule r = new LrSchedule(LrSchedulerName.COSINE_WITH_RESTARTS, 1e-4, 0, 100);
        assertEquals(0.5, r.multiplier(50), E);
        assertEquals(0.0, r.multiplier(100), E);
        assertEquals(0.0, r.multiplier(170), E);
    }

    @Test
    void shouldDecayPolynomiallyToItsFloor() {
        LrSchedule s = new LrSchedule(LrSchedulerName.POLYNOMIAL, 1e-5, 0, 100);
        assertEquals(1.0, s.multiplier(0), E);
        assertEquals(((1e-5 - 1e-7) * 0.5 + 1e-7) / 1e-5, s.multiplier(50), E);
        assertEquals(1e-7 / 1e-5, s.multiplier(100), E);
        assertEquals(1e-7 / 1e-5, s.multiplier(101), E);
        assertEquals(1e-7, s.lrAt(1000), 1e-20);
    }
}
