package dev.dreamcluster.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dreamcluster.config.ConfigError;
import org.junit.jupiter.api.Test;

/** The failure detector's pause: the embedded cluster's scaling with oversubscription, and the flag's bounds. */
class HeartbeatPauseTest {
    @Test
    void theEmbeddedClusterScalesThePauseWithWorkersPerCore() {
        assertEquals(8, Nodes.embeddedHeartbeatPause(1, 2));
        assertEquals(8, Nodes.embeddedHeartbeatPause(2, 2), "one worker per core: the node default");
        assertEquals(16, Nodes.embeddedHeartbeatPause(3, 2));
        assertEquals(32, Nodes.embeddedHeartbeatPause(8, 2), "8 JVMs on 2 cores (measured: 6-9 s heartbeat intervals at start)");
        assertEquals(8, Nodes.embeddedHeartbeatPause(8, 16));
    }

    @Test
    void theFlagTakesOneToSixHundredSeconds() {
        assertEquals("", Nodes.heartbeatConfig(8, "--heartbeat_pause"), "the node config's own value adds nothing");
        assertTrue(Nodes.heartbeatConfig(32, "--heartbeat_pause").contains("acceptable-heartbeat-pause = 32s"));
        ConfigError e = assertThrows(ConfigError.class, () -> Nodes.heartbeatConfig(0, "--heartbeat_pause"));
        assertTrue(e.getMessage().contains("--heartbeat_pause") && e.getMessage().contains("1..600"), e.getMessage());
    }
}
