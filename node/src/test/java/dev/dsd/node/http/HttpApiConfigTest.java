package dev.dsd.node.http;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class HttpApiConfigTest {
  @Test
  void hostPortAsGivenToTheHttpFlag() {
    HttpApiConfig c = HttpApiConfig.parse("0.0.0.0:8080");
    assertEquals("0.0.0.0", c.host());
    assertEquals(8080, c.port());
    assertEquals(HttpApiConfig.DEFAULT_MAX_BODY_BYTES, c.maxBodyBytes());
    assertEquals("::1", HttpApiConfig.parse("[::1]:0").host());
    for (String bad : new String[] {"8080", ":8080", "host:", "host:http", "host:70000"}) {
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> HttpApiConfig.parse(bad), bad);
      assertTrue(e.getMessage().contains("port") || e.getMessage().contains("HOST:PORT"), e.getMessage());
    }
    assertThrows(IllegalArgumentException.class, () -> HttpApiConfig.of("h", 1).withMaxConcurrentGenerations(0));
  }
}
