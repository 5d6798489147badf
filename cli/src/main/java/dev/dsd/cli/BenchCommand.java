package dev.dsd.cli;

import dev.dsd.pipeline.checkpoint.Checkpoint;
import dev.dsd.pipeline.model.WeightFormat;
import dev.dsd.pipeline.runtime.BandwidthProbe;
import dev.dsd.pipeline.runtime.RunnerOptions;
import dev.dsd.pipeline.runtime.ShardBenchmark;
import dev.dsd.pipeline.runtime.StageBatchBenchmark;
import dev.dsd.pipeline.runtime.WeightsBenchmark;
import dev.dsd.testnet.sim.ComputeProfile;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(
    name = "bench",
    mixinStandardHelpOptions = true,
    description = "Benchmarks (medians of repeated runs; machines are noisy, compare ratios from one run).",
    subcommands = {BenchCommand.Shard.class, BenchCommand.Batch.class, BenchCommand.P2p.class, BenchCommand.Pipeline.class,
        BenchQualityCommand.class})
final class BenchCommand implements Runnable {
  @Override
  public void run() {
    throw new CliException("choose a benchmark: dsd bench shard --help");
  }

  @Command(
      name = "shard",
      mixinStandardHelpOptions = true,
      description = {
        "The whole model as one shard, per weight format: median ms of a call processing T = 1, 2, 4, 8",
        "new tokens on a warm KV cache, tokens/s, weight bytes read per token, the memory bandwidth this",
        "machine gives a sequential read (a probe read before every timed call), the fraction of it a call",
        "reaches (median of per-sample ratios), and peak RSS.",
        "Formats run one after another in this process, so their ratios come from one run."
      },
      footer = {"", "Example:", "  dsd bench shard --model /tmp/tinyllama --weights f32,q8,q4 --json shard.json"})
  static final class Shard implements Callable<Integer> {
    @Option(names = "--model", paramLabel = "DIR", description = "Model directory (default: bundled target).")
    Path model;

    @Option(names = "--weights", split = ",", defaultValue = WeightOptions.DEFAULT,
        description = "Formats to measure, comma-separated: f32, f16, q8, q4 (default: ${DEFAULT-VALUE}).")
    List<String> formats;

    @Option(names = "--weights-cache", paramLabel = "DIR|none",
        description = "Run-format weights cache (default: ~/.cache/dsd/weights; 'none': temporary files).")
    String cache;

    @Option(names = "--warm", defaultValue = "128", description = "Cached tokens before each call (default: ${DEFAULT-VALUE}).")
    int warm;

    @Option(names = "--iterations", defaultValue = "20", description = "Samples per T (default: ${DEFAULT-VALUE}).")
    int iterations;

    @Option(names = "--reference-iterations", defaultValue = "0",
        description = "Also time the plain-Java reference in f32 (slow, whole model on the heap; default: ${DEFAULT-VALUE}).")
    int referenceIterations;

    @Option(names = "--bandwidth-mib", defaultValue = "512", description = "Buffer the bandwidth probe reads (default: ${DEFAULT-VALUE}; resident during the run, left out of peak RSS).")
    int bandwidthMib;

    @Option(names = "--interleave", description = {"Open every format at once and interleave their calls (sample i runs",
        "each format once), so on a shared machine all formats see the same load; peak RSS is then the sum of",
        "the formats."})
    boolean interleave;

    @Option(names = "--threads", defaultValue = "0", description = "ONNX Runtime threads, 0 = all cores.")
    int threads;

    @Option(names = "--json", paramLabel = "FILE", description = "Also write the results as JSON here.")
    Path json;

    @Option(names = "--profile", paramLabel = "FILE",
        description = "Also write a compute profile (ms per call against T per format, fitted a + b*T) that `dsd sim --profile` reads.")
    Path profile;

    @Option(names = "--ort-profile", paramLabel = "PREFIX",
        description = "Also profile 10 one-token calls per format with ONNX Runtime (files PREFIX-<format>_*.json) and print the time per operator type.")
    Path ortProfile;

    @Override
    public Integer call() throws Exception {
      Path dir = model != null ? model : Defaults.targetModel();
      WeightOptions wo = new WeightOptions();
      wo.cache = cache;
      int[] ts = {1, 2, 4, 8};
      try (Checkpoint ck = Checkpoint.open(dir)) {
        var c = ck.config();
        System.out.printf("model %s  layers %d  hidden %d  mlp %d  heads %d/%d  vocab %d  warm cache %d tokens  threads %s%n",
            dir, c.numLayers(), c.hiddenSize(), c.intermediateSize(), c.numHeads(), c.numKvHeads(), c.vocabSize(), warm,
            threads == 0 ? "all" : threads);
        if (referenceIterations > 0) {
          List<ShardBenchmark.Row> rows = ShardBenchmark.run(c, ck.weights(), warm, ts, iterations, referenceIterations,
              threads);
          System.out.printf("%6s %14s %16s %14s%n", "T", "onnx f32 ms", "reference ms", "ref/onnx");
          for (ShardBenchmark.Row r : rows) {
            System.out.printf("%6d %14.3f %16.3f %14.1f%n", r.tokens(), r.onnxMedianMs(), r.referenceMedianMs(), r.ratio());
          }
        }
        String modelId = wo.cacheDir() == null ? null : ck.modelId();
        List<WeightsBenchmark.Result> results = new java.util.ArrayList<>();
        // one probe for the whole run, opened before any format so every format's peak RSS holds it
        BandwidthProbe probe = new BandwidthProbe((long) bandwidthMib << 20, threads);
        try (probe) {
          if (interleave) {
            List<RunnerOptions> ros = new java.util.ArrayList<>();
            for (String f : formats) {
              wo.weights = f;
              ros.add(RunnerOptions.defaults().withThreads(threads).withWeights(wo.format()).withCacheDir(wo.cacheDir()));
            }
            results.addAll(WeightsBenchmark.runInterleaved(c, ck.weights(), modelId, ros, warm, ts, iterations, probe));
          }
          for (String f : interleave ? List.<String>of() : formats) {
            wo.weights = f;
            RunnerOptions ro = RunnerOptions.defaults().withThreads(threads).withWeights(wo.format())
                .withCacheDir(wo.cacheDir());
            WeightsBenchmark.Result r = WeightsBenchmark.run(c, ck.weights(), modelId, ro, warm, ts, iterations, probe);
            results.add(r);
            // each format as it finishes: a long run that fails later still leaves these
            for (WeightsBenchmark.Row row : r.rows()) {
              System.out.printf("  %s T=%d %.2f ms/call %.1f tokens/s %.1f GB/s (probe alongside %.1f GB/s), peak RSS %.0f MB,"
                  + " load %.1f s%n", r.format().id(), row.tokens(), row.medianMs(), row.tokensPerSecond(), row.gbPerSecond(),
                  row.probeGbPerSecond(), r.peakRssBytes() / 1e6, r.loadMs() / 1000);
            }
            System.gc();
          }
        }
        if (ortProfile != null) {
          for (String f : formats) {
            wo.weights = f;
            RunnerOptions ro = RunnerOptions.defaults().withThreads(threads).withWeights(wo.format())
                .withCacheDir(wo.cacheDir());
            Map<String, Double> ops = WeightsBenchmark.profile(c, ck.weights(), modelId, ro, warm, 10,
                ortProfile.resolveSibling(ortProfile.getFileName() + "-" + wo.format().id()));
            double run = ops.remove("(run)");
            StringBuilder line = new StringBuilder(String.format("ORT profile %s T=1, 10 calls, %.2f ms/call:", f,
                run / 10 / 1000));
            ops.entrySet().stream().limit(8).forEach(e -> line.append(String.format(" %s %.1f%%", e.getKey(),
                100 * e.getValue() / run)));
            System.out.println(line);
            System.gc();
          }
        }
        double bw = WeightsBenchmark.bandwidth((long) bandwidthMib << 20, 7, threads);
        System.out.printf("memory bandwidth (sequential read of %d MiB, median of 7, after the formats): %.1f GB/s%n",
            bandwidthMib, bw);
        System.out.println("'of limit': median over samples of the call's GB/s over a probe read just before it"
            + (interleave ? "; formats interleaved call by call, peak RSS is all formats' together" : ""));
        System.out.printf("%-6s %3s %10s %10s %14s %10s %10s %9s %11s %10s%n", "format", "T", "ms/call", "tokens/s",
            "MB read/token", "GB/s", "probe GB/s", "of limit", "peak RSS MB", "load s");
        for (WeightsBenchmark.Result r : results) {
          for (WeightsBenchmark.Row row : r.rows()) {
            System.out.printf("%-6s %3d %10.2f %10.1f %14.1f %10.1f %10.1f %8.0f%% %11.0f %10.1f%n", r.format().id(),
                row.tokens(), row.medianMs(), row.tokensPerSecond(), row.bytesPerToken() / 1e6, row.gbPerSecond(),
                row.probeGbPerSecond(), 100 * row.fractionOfProbe(), r.peakRssBytes() / 1e6, r.loadMs() / 1000);
          }
        }
        WeightsBenchmark.Result f32 = results.stream().filter(r -> r.format() == WeightFormat.F32).findFirst().orElse(null);
        if (f32 != null) {
          for (WeightsBenchmark.Result r : results) {
            if (r != f32) {
              System.out.printf("T=1 speed-up over f32 in this run: %s %.2fx%n", r.format().id(),
                  f32.rows().get(0).medianMs() / r.rows().get(0).medianMs());
            }
          }
        }
        if (json != null) {
          writeJson(json, dir, c, bw, results);
          System.out.println("wrote " + json.toAbsolutePath());
        }
        if (profile != null) {
          Map<String, ComputeProfile.Fit> fits = new java.util.LinkedHashMap<>();
          for (WeightsBenchmark.Result r : results) {
            fits.put(r.format().id(), ComputeProfile.Fit.of(r.rows().stream()
                .map(row -> new double[] {row.tokens(), row.medianMs()}).toList()));
          }
          new ComputeProfile(dir.getFileName().toString(), c.numLayers(), c.hiddenSize(), fits).write(profile,
              Map.of("threads", threads, "warm", warm, "iterations", iterations, "measured_by", "dsd bench shard --model "
                  + dir.getFileName() + " --threads " + threads + " --iterations " + iterations + " --weights "
                  + String.join(",", formats) + " --profile " + profile.getFileName()));
          System.out.println("wrote " + profile.toAbsolutePath());
        }
      }
      return 0;
    }

    static void writeJson(Path file, Path dir, dev.dsd.pipeline.model.ModelConfig c, double bw,
        List<WeightsBenchmark.Result> results) throws java.io.IOException {
      var json = new com.fasterxml.jackson.databind.ObjectMapper();
      var root = json.createObjectNode();
      root.put("model", dir.toString()).put("layers", c.numLayers()).put("hidden", c.hiddenSize())
          .put("intermediate", c.intermediateSize()).put("vocab", c.vocabSize()).put("bandwidthGBps", bw);
      var arr = root.putArray("formats");
      for (WeightsBenchmark.Result r : results) {
        var o = arr.addObject().put("format", r.format().id()).put("loadSeconds", r.loadMs() / 1000)
            .put("weightBytes", r.weightBytes()).put("bytesReadPerCall", r.bytesPerCall())
            .put("peakRssBytes", r.peakRssBytes());
        var rows = o.putArray("rows");
        for (WeightsBenchmark.Row row : r.rows()) {
          rows.addObject().put("tokens", row.tokens()).put("medianMs", row.medianMs())
              .put("tokensPerSecond", row.tokensPerSecond()).put("bytesReadPerToken", row.bytesPerToken())
              .put("GBps", row.gbPerSecond()).put("probeGBps", row.probeGbPerSecond())
              .put("fractionOfBandwidth", row.fractionOfProbe());
        }
      }
      json.writerWithDefaultPrettyPrinter().writeValue(file.toFile(), root);
    }
  }

  @Command(
      name = "batch",
      mixinStandardHelpOptions = true,
      description = {
        "One batched stage call for B sessions (each T new tokens on a warm cache) against B",
        "per-session calls, and the share of the batched call spent copying caches."
      },
      footer = {"", "Example:", "  dsd bench batch --layers 4 --warm 256 --tokens 4"})
  static final class Batch implements Callable<Integer> {
    @Option(names = "--model", paramLabel = "DIR", description = "Model directory (default: bundled target).")
    Path model;

    @Option(names = "--layers", defaultValue = "0", description = "Layers [0, N) as the stage (default: all).")
    int layers;

    @Option(names = "--warm", defaultValue = "256", description = "Cached tokens per session (default: ${DEFAULT-VALUE}).")
    int warm;

    @Option(names = "--tokens", defaultValue = "4", description = "New tokens per session and call (default: ${DEFAULT-VALUE}).")
    int tokens;

    @Option(names = "--rows", defaultValue = "1,4,16,32", split = ",", description = "Sessions per call.")
    int[] rows;

    @Option(names = "--iterations", defaultValue = "30", description = "Samples per row count (default: ${DEFAULT-VALUE}).")
    int iterations;

    @Option(names = "--threads", defaultValue = "0", description = "ONNX Runtime threads, 0 = all cores.")
    int threads;

    @Override
    public Integer call() {
      Path dir = model != null ? model : Defaults.targetModel();
      try (Checkpoint ck = Checkpoint.open(dir)) {
        int to = layers > 0 ? layers : ck.config().numLayers();
        List<StageBatchBenchmark.Row> out = StageBatchBenchmark.run(ck.config(), ck.weights(), to, warm, tokens, rows,
            iterations, threads);
        System.out.printf("model %s  layers [0,%d) of %d  hidden %d  warm %d  T %d  threads %s%n", dir, to,
            ck.config().numLayers(), ck.config().hiddenSize(), warm, tokens, threads == 0 ? "all" : threads);
        System.out.printf("%6s %12s %14s %10s %12s%n", "rows", "batched ms", "B solo ms", "speedup", "copy share");
        for (StageBatchBenchmark.Row r : out) {
          System.out.printf("%6d %12.2f %14.2f %10.2f %11.1f%%%n", r.rows(), r.batchedMs(), r.soloMs(), r.speedup(),
              100 * r.gatherShare());
        }
      }
      return 0;
    }
  }

  @Command(
      name = "p2p",
      mixinStandardHelpOptions = true,
      description = "Loopback throughput of one yamux stream over Noise vs plain Netty TCP, and libp2p ping RTT.",
      footer = {"", "Example:", "  dsd bench p2p --mib 256 --runs 5 --pings 200"})
  static final class P2p implements Callable<Integer> {
    @Option(names = "--mib", defaultValue = "256", description = "MiB per run (default: ${DEFAULT-VALUE}).")
    long mib;

    @Option(names = "--runs", defaultValue = "5", description = "Runs per transport (default: ${DEFAULT-VALUE}).")
    int runs;

    @Option(names = "--pings", defaultValue = "200", description = "Pings (default: ${DEFAULT-VALUE}).")
    int pings;

    @Override
    public Integer call() throws Exception {
      dev.dsd.p2p.bench.P2pBench.main(new String[] {Long.toString(mib), Integer.toString(runs), Integer.toString(pings)});
      return 0;
    }
  }

  @Command(
      name = "pipeline",
      mixinStandardHelpOptions = true,
      description = {
        "Tokens/s through N target stages + an entry that drafts, every node behind a link emulator that",
        "delays each message by the one-way latency (and caps its rate with --bandwidth): non-speculative",
        "vs fixed windows vs auto vs adaptive vs token trees (treeN, tree-auto), each window mode also",
        "pipelined (pipe-k4, pipe-auto, ... keep several rounds of a session in flight), greedy and sampled,",
        "on the held-out prompts",
        "(models/heldout-prompts.json), in a seeded shuffled order. Times include session setup; ttft is the",
        "median time to first token; 'novel a' is acceptance on rounds that repeat no earlier 4-gram.",
        "Prints a table and writes JSON."
      },
      footer = {"", "Example:", "  dsd bench pipeline --latency 0,5,20,50 --prompts 5 --max-tokens 128 --json bench-pipeline.json",
          "  dsd bench pipeline --latency 20 --bandwidth 100 --modes off,auto --sampling sampled",
          "  dsd bench pipeline --latency 20,0 --modes off,auto,pipe-auto,k4,pipe-k4 --prompts 20"})
  static final class Pipeline implements Callable<Integer> {
    @Option(names = "--model", paramLabel = "DIR", description = "Target (default: bundled).")
    Path model;

    @Option(names = "--draft", paramLabel = "DIR", description = "Draft (default: bundled).")
    Path draft;

    @Option(names = "--stages", defaultValue = "4", description = "Target stages (default: ${DEFAULT-VALUE}).")
    int stages;

    @Option(names = "--latency", split = ",", defaultValue = "0,5,20,50", description = "One-way link latencies in ms (default: ${DEFAULT-VALUE}).")
    List<Double> latencies;

    @Option(names = "--modes", split = ",", defaultValue = "off,k2,k4,k8,auto,adaptive,tree-auto", description = {"Decoding modes: off, kN, auto, adaptive, treeN, tree-auto, and pipelined: pipe-kN, pipe-auto,",
        "pipe-kNdD (D rounds in flight, not the controller's choice) (default: ${DEFAULT-VALUE})."})
    List<String> modes;

    @Option(names = "--prompts", defaultValue = "5", description = "Held-out prompts per mode (default: ${DEFAULT-VALUE}).")
    int prompts;

    @Option(names = "--max-tokens", defaultValue = "128", description = "New tokens per prompt (default: ${DEFAULT-VALUE}).")
    int maxTokens;

    @Option(names = "--threads", defaultValue = "1", description = "ONNX Runtime threads per stage (default: ${DEFAULT-VALUE}).")
    int threads;

    @Option(names = "--sampling", split = ",", defaultValue = "greedy,sampled", description = {"greedy and/or sampled",
        "(temperature 0.8, top-p 0.95) (default: ${DEFAULT-VALUE})."})
    List<String> sampling;

    @Option(names = "--bandwidth", paramLabel = "MBIT", defaultValue = "0",
        description = "Rate cap of every link in Mbit/s, 0 for none (default: ${DEFAULT-VALUE}).")
    double bandwidth;

    @Option(names = "--order-seed", defaultValue = "1",
        description = "Seed of the shuffled run order at each latency (default: ${DEFAULT-VALUE}).")
    long orderSeed;

    @Option(names = "--json", paramLabel = "FILE", defaultValue = "bench-pipeline.json", description = "Where to write the rows (default: ${DEFAULT-VALUE}).")
    Path json;

    @Override
    public Integer call() throws Exception {
      Path target = model != null ? model : Defaults.targetModel();
      Path draftDir = draft != null ? draft : Defaults.draftModel();
      if (draftDir == null) {
        throw new CliException("no --draft given and the bundled draft is missing");
      }
      List<String> all = Defaults.heldOutPrompts();
      if (prompts < 1 || prompts > all.size()) {
        throw new CliException("--prompts must be 1.." + all.size());
      }
      var c = new dev.dsd.testnet.PipelineBench.Config(target, draftDir, stages, latencies, all.subList(0, prompts),
          maxTokens, modes.stream().map(dev.dsd.testnet.PipelineBench.Mode::parse).toList(), threads,
          sampling.stream().map(dev.dsd.testnet.PipelineBench.Sampling::parse).toList(), bandwidth, orderSeed);
      System.out.println(dev.dsd.testnet.PipelineBench.header());
      var rows = dev.dsd.testnet.PipelineBench.run(c, System.out::println);
      // again in a fixed order, now with the quality columns that compare each mode with off
      System.out.println(dev.dsd.testnet.PipelineBench.header());
      rows.forEach(r -> System.out.println(dev.dsd.testnet.PipelineBench.format(r)));
      System.out.print(dev.dsd.testnet.PipelineBench.ratios(rows));
      dev.dsd.testnet.PipelineBench.writeJson(rows, c, json);
      System.out.println("wrote " + json.toAbsolutePath());
      return 0;
    }
  }
}
