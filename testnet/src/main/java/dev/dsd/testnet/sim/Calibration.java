package dev.dsd.testnet.sim;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Path;

/**
 * Reads the per-hop and per-round costs the testnet showed beyond model compute:
 *
 * <pre>{"format": "dsd-sim-calibration/1", "hop_ms": 1.2, "round_ms": 0.8, "draft_call_ms": 0.5,
 *  "draft_open_ms": 300, "how": "..."}</pre>
 */
public final class Calibration {
  public static final String FORMAT = "dsd-sim-calibration/1";

  private Calibration() { }

  public static SimConfig.Calibration read(Path file) throws IOException {
    JsonNode n = new ObjectMapper().readTree(file.toFile());
    if (n == null || !FORMAT.equals(n.path("format").asText())) {
      throw new IllegalArgumentException(file + " is not a simulator calibration (\"format\": \"" + FORMAT + "\" missing)");
    }
    double hop = n.path("hop_ms").asDouble(-1);
    double round = n.path("round_ms").asDouble(-1);
    double draft = n.path("draft_call_ms").asDouble(-1);
    double open = n.path("draft_open_ms").asDouble(0);
    if (hop < 0 || round < 0 || draft < 0 || open < 0) {
      throw new IllegalArgumentException(file + ": hop_ms, round_ms, draft_call_ms and draft_open_ms must be numbers >= 0");
    }
    return new SimConfig.Calibration(hop, round, draft, open);
  }
}
