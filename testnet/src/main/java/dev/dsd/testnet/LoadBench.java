package dev.dsd.testnet;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Many users at once: N concurrent clients, each sending R streamed completions one after another
 * through an entry's OpenAI-compatible API, for each N given. Prints aggregate tokens/s (all
 * completion tokens over the level's wall time), p50/p99 time to first token (request sent to
 * first text chunk, as the client sees it: queueing included), p50/p99 inter-token latency
 * ((last chunk - first chunk) / (tokens - 1) per request) and how many requests were refused;
 * appends JSON lines and draws PNG charts.
 *
 * <pre>
 * java -cp dsd.jar dev.dsd.testnet.LoadBench --url http://127.0.0.1:8080 --clients 1,4,16,32 \
 *     --requests 2 --max-tokens 64 --prompts models/heldout-prompts.json --out testnet/results --label after \
 *     [--temperature 0.8]   # sampled completions (default 0: greedy)
 *     [--warmup 3 --warmup-clients 1]   # requests per warm-up client, not counted
 *     [--pids RUN/pids]   # also the CPU time each swarm process spent per token at each level
 * </pre>
 */
public final class LoadBench {
  private static final ObjectMapper JSON = new ObjectMapper();

  private record Outcome(int status, int tokens, double ttft, double itl) {}

  private LoadBench() {}

  public static void main(String[] args) throws Exception {
    Map<String, String> a = new LinkedHashMap<>();
    for (int i = 0; i + 1 < args.length; i += 2) {
      a.put(args[i].replaceFirst("^--", ""), args[i + 1]);
    }
    String url = a.getOrDefault("url", "http://127.0.0.1:8080");
    int requests = Integer.parseInt(a.getOrDefault("requests", "2"));
    int maxTokens = Integer.parseInt(a.getOrDefault("max-tokens", "64"));
    String label = a.getOrDefault("label", "run");
    double temperature = Double.parseDouble(a.getOrDefault("temperature", "0")); // 0: greedy
    Path pids = a.containsKey("pids") ? Path.of(a.get("pids")) : null; // "pid name" lines: CPU per token of each
    Path out = Path.of(a.getOrDefault("out", "testnet/results"));
    List<String> prompts = new ArrayList<>();
    for (JsonNode p : JSON.readTree(Path.of(a.getOrDefault("prompts", "models/heldout-prompts.json")).toFile())
        .get("prompts")) {
      prompts.add(p.asText());
    }
    Files.createDirectories(out);
    HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
        .connectTimeout(Duration.ofSeconds(10)).build();
    System.out.printf("%-8s %7s %8s %8s %8s %10s %10s %10s %10s %10s%n", "label", "clients", "requests", "refused",
        "tokens", "tok/s", "ttft p50", "ttft p99", "itl p50", "itl p99");
    // not counted: the first requests pay for route discovery, JIT and ORT's first runs
    // (--warmup-clients sends them from that many clients at once, so that the code paths of
    // batched calls are compiled before any level is measured, the first one included)
    int warmup = Integer.parseInt(a.getOrDefault("warmup", "3"));
    int warmupClients = Integer.parseInt(a.getOrDefault("warmup-clients", "1"));
    ExecutorService warm = Executors.newFixedThreadPool(warmupClients);
    List<Future<?>> warming = new ArrayList<>();
    for (int c = 0; c < warmupClients; c++) {
      int client = c;
      warming.add(warm.submit(() -> {
        for (int i = 0; i < warmup; i++) {
          complete(http, url, prompts.get((client * warmup + i) % prompts.size()), maxTokens, temperature);
        }
      }));
    }
    for (Future<?> f : warming) {
      f.get();
    }
    warm.shutdown();
    List<double[]> throughput = new ArrayList<>();
    List<double[]> ttftP99 = new ArrayList<>();
    for (String level : a.getOrDefault("clients", "1,4,16,32").split(",")) {
      int n = Integer.parseInt(level.trim());
      ExecutorService pool = Executors.newFixedThreadPool(n);
      List<Future<List<Outcome>>> runs = new ArrayList<>();
      Map<String, Long> cpu0 = SwarmCpu.read(pids);
      long t0 = System.nanoTime();
      for (int c = 0; c < n; c++) {
        int client = c;
        runs.add(pool.submit(() -> {
          List<Outcome> mine = new ArrayList<>();
          for (int r = 0; r < requests; r++) {
            String prompt = prompts.get((client * requests + r) % prompts.size());
            mine.add(complete(http, url, prompt, maxTokens, temperature));
          }
          return mine;
        }));
      }
      List<Outcome> all = new ArrayList<>();
      for (Future<List<Outcome>> f : runs) {
        all.addAll(f.get());
      }
      double wall = (System.nanoTime() - t0) / 1e9;
      Map<String, Long> cpu1 = SwarmCpu.read(pids);
      pool.shutdown();
      int refused = 0;
      int failed = 0;
      long tokens = 0;
      List<Double> ttft = new ArrayList<>();
      List<Double> itl = new ArrayList<>();
      for (Outcome o : all) {
        if (o.status() == 503) {
          refused++;
        } else if (o.status() != 200) {
          failed++;
        } else {
          tokens += o.tokens();
          ttft.add(o.ttft());
          if (o.tokens() > 1) {
            itl.add(o.itl());
          }
        }
      }
      double tps = tokens / wall;
      System.out.printf("%-8s %7d %8d %8d %8d %10.1f %10.3f %10.3f %10.4f %10.4f%s%n", label, n, all.size(), refused,
          tokens, tps, pct(ttft, 50), pct(ttft, 99), pct(itl, 50), pct(itl, 99),
          failed > 0 ? "  (" + failed + " failed)" : "");
      ObjectNode row = JSON.createObjectNode().put("label", label).put("clients", n).put("requests", all.size())
          .put("refused", refused).put("failed", failed).put("tokens", tokens).put("wall_s", wall)
          .put("tokens_per_s", tps).put("ttft_p50_s", pct(ttft, 50)).put("ttft_p99_s", pct(ttft, 99))
          .put("itl_p50_s", pct(itl, 50)).put("itl_p99_s", pct(itl, 99)).put("max_tokens", maxTokens)
          .put("temperature", temperature);
      if (pids != null && tokens > 0) {
        ObjectNode per = row.putObject("cpu_ms_per_token");
        StringBuilder line = new StringBuilder();
        double sum = 0;
        for (Map.Entry<String, Long> e : cpu1.entrySet()) {
          Long before = cpu0.get(e.getKey());
          if (before == null) {
            continue;
          }
          double ms = (e.getValue() - before) / 1e6 / tokens;
          sum += ms;
          per.put(e.getKey(), ms);
          line.append(String.format(" %s %.2f", e.getKey(), ms));
        }
        row.put("swarm_cpu_ms_per_token", sum);
        System.out.printf("%-8s %7d   swarm CPU ms per token %.2f:%s%n", label, n, sum, line);
      }
      Files.writeString(out.resolve("load.jsonl"), JSON.writeValueAsString(row) + "\n", StandardCharsets.UTF_8,
          StandardOpenOption.CREATE, StandardOpenOption.APPEND);
      throughput.add(new double[] {n, tps});
      ttftP99.add(new double[] {n, pct(ttft, 99) * 1000});
    }
    BenchChart.write(Map.of(label + " tok/s", throughput), "aggregate tokens/s vs concurrent clients", "clients",
        "tokens / s", out.resolve("load-" + label + "-throughput.png"));
    BenchChart.write(Map.of(label + " p99 TTFT", ttftP99), "p99 time to first token vs concurrent clients", "clients",
        "ms", out.resolve("load-" + label + "-ttft.png"));
  }

  /** One streamed completion; the token count is the usage the server reports at the end. */
  static Outcome complete(HttpClient http, String url, String prompt, int maxTokens, double temperature) {
    ObjectNode body = JSON.createObjectNode().put("prompt", prompt).put("max_tokens", maxTokens)
        .put("temperature", temperature)
        .put("stream", true);
    body.putObject("stream_options").put("include_usage", true);
    long sent = System.nanoTime();
    try {
      HttpResponse<java.io.InputStream> r = http.send(HttpRequest.newBuilder(URI.create(url + "/v1/completions"))
          .timeout(Duration.ofMinutes(10)).header("Content-Type", "application/json")
          .POST(HttpRequest.BodyPublishers.ofString(JSON.writeValueAsString(body))).build(),
          HttpResponse.BodyHandlers.ofInputStream());
      if (r.statusCode() != 200) {
        r.body().close();
        return new Outcome(r.statusCode(), 0, 0, 0);
      }
      long first = 0;
      long last = 0;
      int tokens = 0;
      try (BufferedReader in = new BufferedReader(new InputStreamReader(r.body(), StandardCharsets.UTF_8))) {
        for (String line; (line = in.readLine()) != null; ) {
          if (!line.startsWith("data: ") || line.equals("data: [DONE]")) {
            continue;
          }
          JsonNode chunk = JSON.readTree(line.substring(6));
          if (chunk.has("error")) {
            return new Outcome(500, 0, 0, 0);
          }
          JsonNode usage = chunk.get("usage");
          if (usage != null && !usage.isNull()) {
            tokens = usage.get("completion_tokens").asInt();
          }
          JsonNode choices = chunk.get("choices");
          if (choices != null && choices.size() > 0 && !choices.get(0).path("text").asText().isEmpty()) {
            long now = System.nanoTime();
            if (first == 0) {
              first = now;
            }
            last = now;
          }
        }
      }
      if (first == 0) {
        return new Outcome(200, tokens, (System.nanoTime() - sent) / 1e9, 0);
      }
      double itl = tokens > 1 ? (last - first) / 1e9 / (tokens - 1) : 0;
      return new Outcome(200, tokens, (first - sent) / 1e9, itl);
    } catch (IOException e) {
      return new Outcome(-1, 0, 0, 0);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return new Outcome(-1, 0, 0, 0);
    }
  }

  static double pct(List<Double> v, double p) {
    if (v.isEmpty()) {
      return Double.NaN;
    }
    List<Double> s = new ArrayList<>(v);
    Collections.sort(s);
    int i = (int) Math.ceil(p / 100 * s.size()) - 1;
    return s.get(Math.max(0, Math.min(s.size() - 1, i)));
  }
}
