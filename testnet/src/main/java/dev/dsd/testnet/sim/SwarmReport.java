package dev.dsd.testnet.sim;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dsd.testnet.BenchChart;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What the simulator says about big swarms: a 70B-shaped model (80 layers of width 8192, MLP 28672,
 * GQA 64/8) in 4-bit weights over 100 and 1,000 peers with heterogeneous links, churn and bursty
 * requests. Each layer's compute comes from bandwidth, as a memory-bound decode step does: the bytes
 * of its weights over the measured memory bandwidth of this machine, and a T-token call costs
 * (1 + {@link #TOKEN_SHARE} (T-1)) of a one-token call, as measured on a 1.1B Llama. Acceptance is
 * the bundled pair's greedy trace. {@code SwarmReport TRACE.json OUT_DIR}
 */
public final class SwarmReport {
  /** Sequential read bandwidth of this machine (FACTS.md: numpy, 2-core EPYC), bytes per ms. */
  static final double BANDWIDTH_BYTES_PER_MS = 22e9 / 1000;
  /** A T=8 call cost 1.18x a T=1 call on the 1.1B Llama-shaped checkpoint: 0.18/7 per extra token. */
  static final double TOKEN_SHARE = 0.18 / 7;
  /** 4-bit weights with a 16-bit scale per 32: 4.5 bits per parameter. */
  static final double Q4_BYTES_PER_PARAM = 4.5 / 8;
  static final int LAYERS = 80;
  static final int HIDDEN = 8192;

  private SwarmReport() { }

  /** Parameters of one Llama-70B-shaped layer: q, o (h x h), k, v (h x 1024), gate, up, down (h x 28672). */
  static double paramsPerLayer() {
    return 2.0 * HIDDEN * HIDDEN + 2.0 * HIDDEN * 1024 + 3.0 * HIDDEN * 28672;
  }

  static ComputeProfile target70b() {
    double callMs = LAYERS * paramsPerLayer() * Q4_BYTES_PER_PARAM / BANDWIDTH_BYTES_PER_MS;
    return new ComputeProfile("llama-70b-shape-q4", LAYERS, HIDDEN, Map.of("q4",
        new ComputeProfile.Fit(callMs * (1 - TOKEN_SHARE), callMs * TOKEN_SHARE, 0, List.of())));
  }

  /** A 1.1B draft (22 layers x 2048) in 4 bits on the entry: about 0.62 GB read per step. */
  static ComputeProfile draft1b() {
    double callMs = 1.1e9 * Q4_BYTES_PER_PARAM / BANDWIDTH_BYTES_PER_MS;
    return new ComputeProfile("llama-1.1b-shape-q4", 22, 2048, Map.of("q4",
        new ComputeProfile.Fit(callMs * (1 - TOKEN_SHARE), callMs * TOKEN_SHARE, 0, List.of())));
  }

  /** One swarm: peers = stages x replicas, links 5-100 ms, 10% churn an hour, bursts of 5 requests. */
  static SimConfig swarm(int stages, int replicas, int spec, int requests, double ratePerSecond, long seed) {
    int peers = stages * replicas;
    int entries = Math.max(1, peers / 10);
    return new SimConfig(stages, replicas, LAYERS, 5, 100, 5, 100, false, spec, 64, requests, ratePerSecond, 5, 128,
        "entry", 1, entries, 8, 256, 8, 16, 0.10, 120_000, "q4", 0, 0, 0, 0, 2_000, seed);
  }

  public static void main(String[] args) throws IOException {
    if (args.length < 2) {
      System.err.println("usage: SwarmReport TRACE.json OUT_DIR [timing]");
      System.exit(2);
    }
    AcceptanceTrace trace = AcceptanceTrace.read(Path.of(args[0]));
    if (args.length > 2 && args[2].equals("timing")) {
      // the goal's case alone: 1,000 peers, 10,000 requests
      SimResult r = new Simulator(swarm(10, 100, -1, 10_000, 5, 1), target70b(), draft1b(), trace).run();
      System.out.println(r.summary());
      return;
    }
    Path out = Path.of(args[1]);
    ComputeProfile t = target70b();
    ComputeProfile d = draft1b();
    ObjectMapper om = new ObjectMapper();
    ObjectNode root = om.createObjectNode();
    root.put("model", t.model()).put("stage_call_ms_per_layer", t.millis("q4", 1, 1, 1))
        .put("draft_step_ms", d.millis("q4", 22, 1, 1)).put("trace", args[0]);
    ArrayNode rows = root.putArray("rows");
    StringBuilder md = new StringBuilder("| peers | layers/peer | replicas/range | spec | requests | req/s | tok/s per"
        + " request | swarm tok/s | p50 s | p99 s | acceptance | stage util | batch rows | failovers | sim cpu s |\n"
        + "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    Map<String, List<double[]>> chart = new LinkedHashMap<>();
    // {stages, replicas, requests, rate}: 100 and 1,000 peers at 8 layers per peer, then replicas per range swept
    // rates in requests per 10 s: 100 peers get 5 (0.5/s), 1,000 peers 50 (5/s)
    int[][] grid = {{10, 10, 1000, 5}, {20, 5, 1000, 5}, {10, 100, 10_000, 50}, {20, 50, 10_000, 50},
        {10, 1, 300, 5}, {10, 2, 300, 5}, {10, 5, 300, 5}, {10, 20, 300, 5}};
    String[] specs = {"off", "4", "auto"};
    for (int[] g : grid) {
      for (String spec : specs) {
        SimConfig c = swarm(g[0], g[1], SimValidate.parseSpec(spec), g[2], g[3] / 10.0, 1);
        SimResult r = new Simulator(c, t, d, trace).run();
        double util = 0;
        for (double u : r.stageUtilization()) {
          util += u / r.stageUtilization().length;
        }
        String line = String.format("| %d | %d | %d | %s | %d | %.1f | %.2f | %.1f | %.1f | %.1f | %.3f | %.2f | %.2f | %d"
            + " | %.1f |", c.peers(), LAYERS / g[0], g[1], spec, g[2], g[3] / 10.0, r.tokensPerSecond(), r.throughput(),
            r.p50LatencyMs() / 1000, r.p99LatencyMs() / 1000, r.acceptance(), util, r.meanStageRows(), r.failovers(),
            r.cpuSeconds());
        System.out.println(line);
        md.append(line).append('\n');
        ObjectNode row = r.toJson();
        row.put("peers", c.peers()).put("stages", g[0]).put("replicas", g[1]).put("spec", spec)
            .put("rate_per_second", g[3] / 10.0);
        rows.add(row);
        if (g[0] == 10 && g[2] == 300 || g[0] == 10 && g[1] == 10 && g[2] == 1000) {
          chart.computeIfAbsent(spec, k -> new java.util.ArrayList<>()).add(new double[] {g[1], r.p99LatencyMs() / 1000});
        }
      }
    }
    chart.values().forEach(l -> l.sort((a, b) -> Double.compare(a[0], b[0])));
    Files.createDirectories(out);
    Files.writeString(out.resolve("swarm-scale.md"), md.toString());
    Files.writeString(out.resolve("swarm-scale.json"), om.writerWithDefaultPrettyPrinter().writeValueAsString(root) + "\n");
    BenchChart.write(chart, "70B-shape q4, 10 layer ranges, 0.5 request/s in bursts of 5: p99 latency",
        "replicas per layer range", "p99 latency (s)", out.resolve("swarm-scale.png"));
  }
}
