package dev.dsd.pipeline.runtime;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Where the time of a session's last calls went, by operator type, from the JSON profile ONNX Runtime
 * writes with profiling on ({@code [{"cat": "Session"|"Node", "name", "ts", "dur", "args": {"op_name"}}]},
 * times in microseconds). Only node events inside the last {@code calls} {@code model_run} events
 * count, so a warm-up prefill does not weigh in.
 */
public final class OrtProfileSummary {
  /** Largest profile read: a few thousand calls of a 22-layer shard stay well under it. */
  public static final long MAX_BYTES = 512L << 20;

  private OrtProfileSummary() {}

  /** Microseconds per operator type over the last {@code calls} runs, largest first, and the runs' own total under "(run)". */
  public static Map<String, Double> byOpType(Path profile, int calls) throws IOException {
    if (java.nio.file.Files.size(profile) > MAX_BYTES) {
      throw new IOException(profile + " is larger than " + MAX_BYTES + " bytes");
    }
    JsonNode events = new ObjectMapper().readTree(profile.toFile());
    List<long[]> runs = new ArrayList<>();
    for (JsonNode e : events) {
      if ("Session".equals(e.path("cat").asText()) && "model_run".equals(e.path("name").asText())) {
        runs.add(new long[] {e.path("ts").asLong(), e.path("ts").asLong() + e.path("dur").asLong()});
      }
    }
    List<long[]> last = runs.subList(Math.max(0, runs.size() - calls), runs.size());
    Map<String, Double> us = new LinkedHashMap<>();
    double total = 0;
    for (long[] r : last) {
      total += r[1] - r[0];
    }
    for (JsonNode e : events) {
      if (!"Node".equals(e.path("cat").asText()) || !e.path("name").asText().endsWith("_kernel_time")) {
        continue;
      }
      long ts = e.path("ts").asLong();
      if (last.stream().noneMatch(r -> ts >= r[0] && ts <= r[1])) {
        continue;
      }
      us.merge(e.path("args").path("op_name").asText("?"), e.path("dur").asDouble(), Double::sum);
    }
    Map<String, Double> sorted = new LinkedHashMap<>();
    us.entrySet().stream().sorted(Map.Entry.<String, Double>comparingByValue().reversed())
        .forEach(x -> sorted.put(x.getKey(), x.getValue()));
    sorted.put("(run)", total);
    return sorted;
  }
}
