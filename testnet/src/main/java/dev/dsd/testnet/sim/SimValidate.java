package dev.dsd.testnet.sim;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Function;

/**
 * Compares the simulator with the testnet: reads the generations {@code testnet/sim-validate.sh}
 * measured (one JSON line each), simulates every configuration of the grid on the same prompts and
 * prints measured vs simulated tokens/s. {@link #calibrate} fits the per-hop, per-round and
 * per-draft-call costs on the zero-latency rows only, so the rows with latency stay held out.
 */
public final class SimValidate {
  /** One configuration of the grid and what the testnet measured for it. */
  public record Row(int stages, double latencyMs, String spec, double temperature, int maxTokens, int prompts,
      long tokens, double seconds) {
    public double measured() {
      return tokens / seconds;
    }

    String key() {
      return stages + "/" + latencyMs + "/" + spec + "/" + temperature;
    }
  }

  /** A row with the simulator's answer. */
  public record Compared(Row row, SimResult sim) {
    public double error() {
      return sim.tokensPerSecond() / row.measured() - 1;
    }
  }

  private SimValidate() { }

  public static List<Row> read(Path raw) throws IOException {
    Map<String, Row> rows = new TreeMap<>();
    ObjectMapper om = new ObjectMapper();
    for (String line : Files.readAllLines(raw)) {
      if (line.isBlank()) {
        continue;
      }
      JsonNode n = om.readTree(line);
      JsonNode r = n.path("result");
      Row add = new Row(n.path("stages").asInt(), n.path("latency_ms").asDouble(), n.path("spec").asText(),
          n.path("temperature").asDouble(), n.path("max_tokens").asInt(), 1, r.path("completion_tokens").asLong(),
          r.path("seconds").asDouble());
      rows.merge(add.key(), add, (a, b) -> new Row(a.stages, a.latencyMs, a.spec, a.temperature, a.maxTokens,
          a.prompts + 1, a.tokens + b.tokens, a.seconds + b.seconds));
    }
    if (rows.isEmpty()) {
      throw new IllegalArgumentException(raw + " holds no measured generation");
    }
    return new ArrayList<>(rows.values());
  }

  /**
   * Simulates each row.
   *
   * @param traces the trace for a temperature (its first {@code prompts} prompts are the measured ones)
   */
  public static List<Compared> compare(List<Row> rows, ComputeProfile target, ComputeProfile draft,
      Function<Double, AcceptanceTrace> traces, SimConfig.Calibration cal) {
    List<Compared> out = new ArrayList<>();
    for (Row r : rows) {
      AcceptanceTrace full = traces.apply(r.temperature);
      AcceptanceTrace t = new AcceptanceTrace("t", "d", full.drafter(), full.temperature(), r.maxTokens,
          16, full.prompts().subList(0, Math.min(r.prompts, full.prompts().size())));
      SimConfig c = SimConfig.testnet(r.stages, 1, r.latencyMs, 0, 0, target.layers(), cal)
          .withSpec(parseSpec(r.spec)).withLoad(1, r.prompts, 0, 1).withMaxTokens(r.maxTokens);
      out.add(new Compared(r, new Simulator(c, target, draft, t).run()));
    }
    return out;
  }

  static int parseSpec(String s) {
    return switch (s) {
      case "off" -> 0;
      case "auto" -> -1;
      case "learned" -> SimConfig.LEARNED;
      default -> Integer.parseInt(s);
    };
  }

  /**
   * The calibration that minimises the squared log error of simulated vs measured tokens/s on the
   * zero-latency rows, in two grid searches: hop and round costs on the rows without drafts, then
   * the draft call and draft session costs on the rows with drafts.
   */
  public static SimConfig.Calibration calibrate(List<Row> rows, ComputeProfile target, ComputeProfile draft,
      Function<Double, AcceptanceTrace> traces) {
    List<Row> off = rows.stream().filter(r -> r.latencyMs == 0 && r.spec.equals("off")).toList();
    List<Row> spec = rows.stream().filter(r -> r.latencyMs == 0 && !r.spec.equals("off")).toList();
    if (off.isEmpty() || spec.isEmpty()) {
      throw new IllegalArgumentException("calibration needs rows measured at latency 0 with --spec off and with drafts");
    }
    SimConfig.Calibration best = SimConfig.Calibration.NONE;
    double bestErr = Double.MAX_VALUE;
    for (double hop = 0; hop <= 8; hop += 0.25) {
      for (double round = 0; round <= 8; round += 0.5) {
        SimConfig.Calibration cal = new SimConfig.Calibration(hop, round, 0, 0);
        double err = squaredLogError(compare(off, target, draft, traces, cal));
        if (err < bestErr) {
          bestErr = err;
          best = cal;
        }
      }
    }
    SimConfig.Calibration base = best;
    bestErr = Double.MAX_VALUE;
    for (double call = 0; call <= 6; call += 0.5) {
      for (double open = 0; open <= 4000; open += 100) {
        SimConfig.Calibration cal = new SimConfig.Calibration(base.hopMs(), base.roundMs(), call, open);
        double err = squaredLogError(compare(spec, target, draft, traces, cal));
        if (err < bestErr) {
          bestErr = err;
          best = cal;
        }
      }
    }
    return best;
  }

  private static double squaredLogError(List<Compared> cs) {
    double err = 0;
    for (Compared c : cs) {
      double e = Math.log(c.sim().tokensPerSecond() / c.row().measured());
      err += e * e;
    }
    return err;
  }

  public static String table(List<Compared> cs) {
    StringBuilder sb = new StringBuilder(String.format("%7s %8s %6s %5s %8s %12s %12s %8s%n", "stages", "lat ms",
        "spec", "T", "prompts", "measured", "simulated", "error"));
    for (Compared c : cs) {
      Row r = c.row();
      sb.append(String.format("%7d %8.0f %6s %5.1f %8d %12.2f %12.2f %+7.1f%%%n", r.stages, r.latencyMs, r.spec,
          r.temperature, r.prompts, r.measured(), c.sim().tokensPerSecond(), 100 * c.error()));
    }
    double[] all = cs.stream().mapToDouble(c -> Math.abs(c.error())).sorted().toArray();
    double[] held = cs.stream().filter(c -> c.row().latencyMs > 0).mapToDouble(c -> Math.abs(c.error())).sorted()
        .toArray();
    sb.append(String.format("|error| all rows: median %.1f%%, max %.1f%%", 100 * median(all), 100 * max(all)));
    if (held.length > 0) {
      sb.append(String.format("; held-out rows (latency > 0): median %.1f%%, max %.1f%%", 100 * median(held),
          100 * max(held)));
    }
    return sb.append('\n').toString();
  }

  static double median(double[] sorted) {
    if (sorted.length == 0) {
      return 0;
    }
    int n = sorted.length;
    return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  }

  private static double max(double[] a) {
    return Arrays.stream(a).max().orElse(0);
  }

  public static ObjectNode json(List<Compared> cs, SimConfig.Calibration cal) {
    ObjectNode o = new ObjectMapper().createObjectNode();
    o.putObject("calibration").put("hop_ms", cal.hopMs()).put("round_ms", cal.roundMs())
        .put("draft_call_ms", cal.draftCallMs()).put("draft_open_ms", cal.draftOpenMs());
    ArrayNode rows = o.putArray("rows");
    for (Compared c : cs) {
      Row r = c.row();
      rows.addObject().put("stages", r.stages).put("latency_ms", r.latencyMs).put("spec", r.spec)
          .put("temperature", r.temperature).put("prompts", r.prompts).put("max_tokens", r.maxTokens)
          .put("measured_tokens_per_second", r.measured()).put("simulated_tokens_per_second",
              c.sim().tokensPerSecond()).put("error", c.error()).put("simulated_acceptance", c.sim().acceptance());
    }
    double[] all = cs.stream().mapToDouble(c -> Math.abs(c.error())).sorted().toArray();
    o.put("median_abs_error", median(all)).put("max_abs_error", max(all));
    return o;
  }
}
