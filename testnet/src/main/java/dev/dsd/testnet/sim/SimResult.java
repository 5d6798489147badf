package dev.dsd.testnet.sim;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Arrays;

/**
 * What one simulation measured. {@code tokensPerSecond} is generated tokens over the summed
 * generation time of the requests, as {@code testnet/bench.sh} reports it; {@code throughput} is
 * tokens over the whole simulated span (what a loaded swarm delivers).
 *
 * @param stageUtilization per layer range, the busy fraction of its peers over the span
 */
public record SimResult(int requests, long tokens, double tokensPerSecond, double throughput, double p50LatencyMs,
    double p99LatencyMs, long rounds, long drafted, long accepted, double[] stageUtilization, double meanStageRows,
    long failovers, long leaves, double spanMs, long events, double wallSeconds, double cpuSeconds) {

  public double acceptance() {
    return drafted == 0 ? 0 : (double) accepted / drafted;
  }

  static double percentile(double[] sorted, double q) {
    if (sorted.length == 0) {
      return 0;
    }
    int i = (int) Math.ceil(q * sorted.length) - 1;
    return sorted[Math.max(0, Math.min(sorted.length - 1, i))];
  }

  public ObjectNode toJson() {
    ObjectNode o = new ObjectMapper().createObjectNode();
    o.put("requests", requests).put("tokens", tokens).put("tokens_per_second", tokensPerSecond)
        .put("throughput_tokens_per_second", throughput).put("p50_latency_ms", p50LatencyMs)
        .put("p99_latency_ms", p99LatencyMs).put("rounds", rounds).put("drafted_tokens", drafted)
        .put("accepted_tokens", accepted).put("acceptance", acceptance());
    ArrayNode u = o.putArray("stage_utilization");
    Arrays.stream(stageUtilization).forEach(u::add);
    o.put("mean_stage_batch_rows", meanStageRows).put("failovers", failovers).put("peers_left", leaves)
        .put("simulated_seconds", spanMs / 1000).put("events", events).put("wall_seconds", wallSeconds)
        .put("cpu_seconds", cpuSeconds);
    return o;
  }

  public String summary() {
    StringBuilder u = new StringBuilder();
    for (double x : stageUtilization) {
      u.append(u.length() == 0 ? "" : " ").append(String.format("%.2f", x));
    }
    return String.format("requests %d  tokens %d  tok/s %.2f  throughput %.2f tok/s  p50 %.0f ms  p99 %.0f ms  rounds %d"
        + "  acceptance %.3f  utilization [%s]  batch rows %.2f  failovers %d  left %d  simulated %.1f s  (%d events,"
        + " %.2f s wall, %.2f s cpu)", requests, tokens, tokensPerSecond, throughput, p50LatencyMs, p99LatencyMs, rounds,
        acceptance(), u, meanStageRows, failovers, leaves, spanMs / 1000, events, wallSeconds, cpuSeconds);
  }
}
