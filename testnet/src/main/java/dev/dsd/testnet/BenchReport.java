package dev.dsd.testnet;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Summarizes {@code testnet/bench.sh}'s raw results (one {@code dsd generate --json} line per
 * prompt, tagged with latency, sampling and mode) into a table, a JSON file and a PNG chart. Sampled
 * modes are named {@code mode@sampled} and compared with {@code off@sampled}.
 *
 * <pre>BenchReport RESULTS.jsonl SUMMARY.json CHART.png</pre>
 */
public final class BenchReport {
  private BenchReport() {}

  /** Greedy runs keep the mode's name; others are tagged with their sampling. */
  static String key(String mode, String sampling) {
    return sampling.equals("greedy") ? mode : mode + "@" + sampling;
  }

  public static void main(String[] args) throws IOException {
    if (args.length != 3) {
      System.err.println("usage: BenchReport RESULTS.jsonl SUMMARY.json CHART.png");
      System.exit(2);
    }
    ObjectMapper m = new ObjectMapper();
    // latency → mode → [tokens, seconds, rounds, drafted, accepted, bytes, prompts, first-token seconds]
    Map<Double, Map<String, double[]>> agg = new TreeMap<>();
    for (String line : Files.readAllLines(Path.of(args[0]))) {
      if (line.isBlank()) {
        continue;
      }
      JsonNode n = m.readTree(line);
      JsonNode r = n.get("result");
      double[] a = agg.computeIfAbsent(n.get("latency_ms").asDouble(), k -> new LinkedHashMap<>())
          .computeIfAbsent(key(n.get("mode").asText(), n.path("sampling").asText("greedy")), k -> new double[8]);
      a[0] += r.get("completion_tokens").asDouble();
      a[1] += r.get("seconds").asDouble();
      a[2] += r.get("rounds").asDouble();
      a[3] += r.get("drafted_tokens").asDouble();
      a[4] += r.get("accepted_tokens").asDouble();
      a[5] += r.path("bytes_sent").asDouble();
      a[6] += 1;
      a[7] += r.path("first_token_seconds").asDouble();
    }
    ObjectNode out = m.createObjectNode();
    ArrayNode rows = out.putArray("rows");
    Map<String, List<double[]>> series = new LinkedHashMap<>();
    System.out.printf("%8s %16s %8s %10s %10s %11s %9s %10s %10s%n", "lat ms", "mode", "prompts", "tokens", "tok/s",
        "acceptance", "rnd/tok", "ttft ms", "speedup");
    agg.forEach((lat, modes) -> {
      modes.forEach((mode, a) -> {
        double[] off = modes.get(key("off", mode.contains("@") ? mode.substring(mode.indexOf('@') + 1) : "greedy"));
        double tps = a[0] / a[1];
        double speedup = off == null ? Double.NaN : tps / (off[0] / off[1]);
        System.out.printf("%8.1f %16s %8.0f %10.0f %10.2f %11.3f %9.3f %10.1f %10.2f%n", lat, mode, a[6], a[0], tps,
            a[3] == 0 ? 0 : a[4] / a[3], a[2] / a[0], 1000 * a[7] / a[6], speedup);
        ObjectNode row = rows.addObject();
        row.put("latency_ms", lat);
        row.put("mode", mode);
        row.put("prompts", (int) a[6]);
        row.put("tokens", (long) a[0]);
        row.put("tokens_per_second", tps);
        row.put("acceptance_rate", a[3] == 0 ? 0 : a[4] / a[3]);
        row.put("rounds_per_token", a[2] / a[0]);
        row.put("bytes_per_token", a[5] / a[0]);
        row.put("mean_first_token_ms", 1000 * a[7] / a[6]);
        row.put("speedup_over_off", speedup);
        series.computeIfAbsent(mode, k -> new ArrayList<>()).add(new double[] {lat, tps});
      });
    });
    Files.writeString(Path.of(args[1]), m.writerWithDefaultPrettyPrinter().writeValueAsString(out));
    BenchChart.write(series, "dsd pipeline: tokens/s vs link latency (testnet processes)", Path.of(args[2]));
    System.out.println("wrote " + args[1] + " and " + args[2]);
  }
}
