package dev.dsd.cli;

import dev.dsd.pipeline.checkpoint.Checkpoint;
import dev.dsd.pipeline.runtime.ShardBenchmark;
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
    subcommands = {BenchCommand.Shard.class, BenchCommand.P2p.class, BenchCommand.Pipeline.class})
final class BenchCommand implements Runnable {
  @Override
  public void run() {
    throw new CliException("choose a benchmark: dsd bench shard --help");
  }

  @Command(
      name = "shard",
      mixinStandardHelpOptions = true,
      description = {
        "Latency of one shard call processing T = 1, 2, 4, 8 new tokens on a warm KV cache,",
        "ONNX Runtime vs the plain-Java reference, whole model as one shard."
      },
      footer = {"", "Example:", "  dsd bench shard --model models/pycoder-target --iterations 200"})
  static final class Shard implements Callable<Integer> {
    @Option(names = "--model", paramLabel = "DIR", description = "Model directory (default: bundled target).")
    Path model;

    @Option(names = "--warm", defaultValue = "128", description = "Cached tokens before each call (default: ${DEFAULT-VALUE}).")
    int warm;

    @Option(names = "--iterations", defaultValue = "100", description = "ONNX samples per T (default: ${DEFAULT-VALUE}).")
    int iterations;

    @Option(names = "--reference-iterations", defaultValue = "10", description = "Java reference samples per T.")
    int referenceIterations;

    @Option(names = "--threads", defaultValue = "0", description = "ONNX Runtime threads, 0 = all cores.")
    int threads;

    @Option(names = "--json", paramLabel = "FILE",
        description = "Also write a compute profile (ms per call against T, fitted a + b*T) that `dsd sim --profile` reads.")
    Path json;

    @Override
    public Integer call() throws IOException {
      Path dir = model != null ? model : Defaults.targetModel();
      try (Checkpoint ck = Checkpoint.open(dir)) {
        List<ShardBenchmark.Row> rows = ShardBenchmark.run(ck.config(), ck.weights(), warm, new int[] {1, 2, 4, 8},
            iterations, referenceIterations, threads);
        System.out.printf("model %s  layers %d  hidden %d  warm cache %d tokens  threads %s%n", dir,
            ck.config().numLayers(), ck.config().hiddenSize(), warm, threads == 0 ? "all" : threads);
        System.out.printf("%6s %14s %16s %14s %12s%n", "T", "onnx ms", "reference ms", "ref/onnx", "onnx T/T=1");
        double base = rows.get(0).onnxMedianMs();
        for (ShardBenchmark.Row r : rows) {
          System.out.printf("%6d %14.3f %16.3f %14.1f %12.2f%n", r.tokens(), r.onnxMedianMs(), r.referenceMedianMs(),
              r.ratio(), r.onnxMedianMs() / base);
        }
        if (json != null) {
          List<double[]> pts = rows.stream().map(r -> new double[] {r.tokens(), r.onnxMedianMs()}).toList();
          var fit = ComputeProfile.Fit.of(pts);
          var profile = new ComputeProfile(dir.getFileName().toString(), ck.config().numLayers(),
              ck.config().hiddenSize(), Map.of("f32", fit));
          profile.write(json, Map.of("threads", threads, "warm", warm, "iterations", iterations,
              "measured_by", "dsd bench shard --model " + dir.getFileName() + " --threads " + threads + " --iterations "
                  + iterations + " --json " + json.getFileName()));
          System.out.printf("fit: ms = %.4f + %.4f * T (whole model); wrote %s%n", fit.callMs(), fit.tokenMs(), json);
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
        "delays each message by the one-way latency: non-speculative vs fixed windows vs auto vs adaptive,",
        "on the held-out prompts (models/heldout-prompts.json). Prints a table and writes JSON."
      },
      footer = {"", "Example:", "  dsd bench pipeline --latency 0,5,20,50 --prompts 5 --max-tokens 128 --json bench-pipeline.json"})
  static final class Pipeline implements Callable<Integer> {
    @Option(names = "--model", paramLabel = "DIR", description = "Target (default: bundled).")
    Path model;

    @Option(names = "--draft", paramLabel = "DIR", description = "Draft (default: bundled).")
    Path draft;

    @Option(names = "--stages", defaultValue = "4", description = "Target stages (default: ${DEFAULT-VALUE}).")
    int stages;

    @Option(names = "--latency", split = ",", defaultValue = "0,5,20,50", description = "One-way link latencies in ms (default: ${DEFAULT-VALUE}).")
    List<Double> latencies;

    @Option(names = "--modes", split = ",", defaultValue = "off,k2,k4,k8,auto,adaptive", description = "Decoding modes (default: ${DEFAULT-VALUE}).")
    List<String> modes;

    @Option(names = "--prompts", defaultValue = "5", description = "Held-out prompts per mode (default: ${DEFAULT-VALUE}).")
    int prompts;

    @Option(names = "--max-tokens", defaultValue = "128", description = "New tokens per prompt (default: ${DEFAULT-VALUE}).")
    int maxTokens;

    @Option(names = "--threads", defaultValue = "1", description = "ONNX Runtime threads per stage (default: ${DEFAULT-VALUE}).")
    int threads;

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
          maxTokens, modes.stream().map(dev.dsd.testnet.PipelineBench.Mode::parse).toList(), threads);
      System.out.println(dev.dsd.testnet.PipelineBench.header());
      var rows = dev.dsd.testnet.PipelineBench.run(c, System.out::println);
      System.out.print(dev.dsd.testnet.PipelineBench.ratios(rows));
      dev.dsd.testnet.PipelineBench.writeJson(rows, c, json);
      System.out.println("wrote " + json.toAbsolutePath());
      return 0;
    }
  }
}
