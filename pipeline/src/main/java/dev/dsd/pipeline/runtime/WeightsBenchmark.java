package dev.dsd.pipeline.runtime;

import dev.dsd.pipeline.model.ModelConfig;
import dev.dsd.pipeline.model.WeightFormat;
import dev.dsd.pipeline.model.WeightSource;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * How close a shard comes to the memory-bandwidth limit in each weight format: the median time of a
 * call processing T new tokens on a warm cache, the weight bytes that call reads, and the bandwidth
 * this machine gives a plain sequential read (ORT's ReduceSum over a buffer far larger than the
 * caches, so the same vectorised, multi-threaded code reads it). Peak resident memory is read from
 * {@code /proc/self/status} (VmHWM), reset before each format so every format reports its own.
 *
 * <p>With a {@link BandwidthProbe}, every timed call is preceded by one probe read, and the fraction
 * of the limit is the median over samples of (call's GB/s / probe's GB/s): on a machine shared with
 * other work the bandwidth a process gets changes from minute to minute, and a probe taken once, at
 * another time, can put a call at 20% or 400% of "the" limit.
 */
public final class WeightsBenchmark {
  /** One T of one format. */
  public record Row(int tokens, double medianMs, double tokensPerSecond, double bytesPerToken, double gbPerSecond,
      double probeGbPerSecond, double fractionOfProbe) {}

  /** One format: its load time (cache build or hit), weight bytes, peak RSS and rows. */
  public record Result(WeightFormat format, double loadMs, long weightBytes, long bytesPerCall, long peakRssBytes,
      List<Row> rows) {}

  private WeightsBenchmark() {}

  /**
   * Times every T of {@code tokenCounts} {@code iterations} times; with a {@code probe} (may be null)
   * each sample is paired with a bandwidth read just before it.
   */
  public static Result run(ModelConfig c, WeightSource w, String modelId, RunnerOptions options, int warm,
      int[] tokenCounts, int iterations, BandwidthProbe probe) {
    resetPeakRss();
    int maxT = Arrays.stream(tokenCounts).max().orElse(1);
    SplittableRandom rnd = new SplittableRandom(1);
    int[] prefix = rnd.ints(warm, 0, c.vocabSize()).toArray();
    int[] fresh = rnd.ints(maxT, 0, c.vocabSize()).toArray();
    long t0 = System.nanoTime();
    try (ShardRunner r = new ShardRunner(c, w, 0, c.numLayers(), options, modelId);
        ShardSession s = r.openSession("bench", "bench", warm + maxT)) {
      double loadMs = (System.nanoTime() - t0) / 1e6;
      r.forwardTokens(s, prefix);
      long perCall = r.weightBytesReadPerCall();
      List<Row> rows = new ArrayList<>();
      for (int t : tokenCounts) {
        int[] in = Arrays.copyOf(fresh, t);
        double[] ms = new double[iterations];
        double[] probeGbs = new double[iterations];
        double[] fraction = new double[iterations];
        for (int i = -3; i < iterations; i++) { // 3 warm-up calls
          s.truncate(warm);
          double bw = probe == null || i < 0 ? Double.NaN : probe.read();
          long c0 = System.nanoTime();
          r.forwardTokens(s, in);
          if (i >= 0) {
            ms[i] = (System.nanoTime() - c0) / 1e6;
            probeGbs[i] = bw;
            fraction[i] = perCall / ms[i] / 1e6 / bw;
          }
        }
        double med = ShardBenchmark.median(ms);
        rows.add(new Row(t, med, t * 1000.0 / med, (double) perCall / t, perCall / med / 1e6,
            probe == null ? Double.NaN : ShardBenchmark.median(probeGbs),
            probe == null ? Double.NaN : ShardBenchmark.median(fraction)));
      }
      // the probe's buffer is resident throughout and is not the shard's
      long peak = peakRss() - (probe == null ? 0 : probe.bytes());
      return new Result(options.weights(), loadMs, r.weightBytes(), perCall, peak, rows);
    }
  }

  /**
   * Like {@link #run}, but with every format's runner open at once and their calls interleaved: for each
   * T, sample i runs every format once, starting at format i mod n, each call after its own probe read.
   * On a shared machine the load changes from minute to minute; formats run one after another see
   * different minutes, interleaved ones the same, so their ratios compare like with like. All formats
   * are resident together, so each result's peak RSS is the process's (the sum of the formats).
   */
  public static List<Result> runInterleaved(ModelConfig c, WeightSource w, String modelId, List<RunnerOptions> options,
      int warm, int[] tokenCounts, int iterations, BandwidthProbe probe) {
    resetPeakRss();
    int n = options.size();
    int maxT = Arrays.stream(tokenCounts).max().orElse(1);
    SplittableRandom rnd = new SplittableRandom(1);
    int[] prefix = rnd.ints(warm, 0, c.vocabSize()).toArray();
    int[] fresh = rnd.ints(maxT, 0, c.vocabSize()).toArray();
    List<ShardRunner> runners = new ArrayList<>();
    List<ShardSession> sessions = new ArrayList<>();
    double[] loadMs = new double[n];
    try {
      for (int f = 0; f < n; f++) {
        long t0 = System.nanoTime();
        ShardRunner r = new ShardRunner(c, w, 0, c.numLayers(), options.get(f), modelId);
        runners.add(r);
        sessions.add(r.openSession("bench", "bench", warm + maxT));
        loadMs[f] = (System.nanoTime() - t0) / 1e6;
        r.forwardTokens(sessions.get(f), prefix);
      }
      List<List<Row>> rows = new ArrayList<>();
      for (int f = 0; f < n; f++) {
        rows.add(new ArrayList<>());
      }
      for (int t : tokenCounts) {
        int[] in = Arrays.copyOf(fresh, t);
        double[][] ms = new double[n][iterations];
        double[][] probeGbs = new double[n][iterations];
        double[][] fraction = new double[n][iterations];
        for (int i = -3; i < iterations; i++) { // 3 warm-up rounds
          for (int j = 0; j < n; j++) {
            int f = Math.floorMod(i + j, n);
            ShardSession s = sessions.get(f);
            s.truncate(warm);
            double bw = probe == null || i < 0 ? Double.NaN : probe.read();
            long c0 = System.nanoTime();
            runners.get(f).forwardTokens(s, in);
            if (i >= 0) {
              ms[f][i] = (System.nanoTime() - c0) / 1e6;
              probeGbs[f][i] = bw;
              fraction[f][i] = runners.get(f).weightBytesReadPerCall() / ms[f][i] / 1e6 / bw;
            }
          }
        }
        for (int f = 0; f < n; f++) {
          long perCall = runners.get(f).weightBytesReadPerCall();
          double med = ShardBenchmark.median(ms[f]);
          rows.get(f).add(new Row(t, med, t * 1000.0 / med, (double) perCall / t, perCall / med / 1e6,
              probe == null ? Double.NaN : ShardBenchmark.median(probeGbs[f]),
              probe == null ? Double.NaN : ShardBenchmark.median(fraction[f])));
        }
      }
      long peak = peakRss() - (probe == null ? 0 : probe.bytes());
      List<Result> out = new ArrayList<>();
      for (int f = 0; f < n; f++) {
        ShardRunner r = runners.get(f);
        out.add(new Result(options.get(f).weights(), loadMs[f], r.weightBytes(), r.weightBytesReadPerCall(), peak,
            rows.get(f)));
      }
      return out;
    } finally {
      sessions.forEach(ShardSession::close);
      runners.forEach(ShardRunner::close);
    }
  }

  /**
   * Time per operator type over {@code calls} calls of one token on a warm cache, from ONNX Runtime's
   * profile (written under {@code prefix}, a path prefix, when the runner closes). A separate runner,
   * because profiling slows every call.
   */
  public static Map<String, Double> profile(ModelConfig c, WeightSource w, String modelId, RunnerOptions options,
      int warm, int calls, Path prefix) throws IOException {
    SplittableRandom rnd = new SplittableRandom(1);
    int[] prefill = rnd.ints(warm, 0, c.vocabSize()).toArray();
    int[] one = rnd.ints(1, 0, c.vocabSize()).toArray();
    long started = System.currentTimeMillis();
    try (ShardRunner r = new ShardRunner(c, w, 0, c.numLayers(), options.withOrtProfile(prefix), modelId);
        ShardSession s = r.openSession("profile", "bench", warm + 1)) {
      r.forwardTokens(s, prefill);
      for (int i = 0; i < calls; i++) {
        s.truncate(warm);
        r.forwardTokens(s, one);
      }
    }
    Path dir = prefix.toAbsolutePath().getParent();
    String stem = prefix.getFileName().toString();
    Path newest;
    try (var files = Files.list(dir)) {
      newest = files.filter(f -> f.getFileName().toString().startsWith(stem) && f.toString().endsWith(".json"))
          .filter(f -> f.toFile().lastModified() >= started - 1000)
          .max(java.util.Comparator.comparingLong(f -> f.toFile().lastModified()))
          .orElseThrow(() -> new IOException("ONNX Runtime wrote no profile under " + prefix));
    }
    return OrtProfileSummary.byOpType(newest, calls);
  }

  /** Median GB/s of {@code runs} sequential reads of {@code bytes} by ORT's ReduceSum. */
  public static double bandwidth(long bytes, int runs, int threads) {
    try (BandwidthProbe p = new BandwidthProbe(bytes, threads)) {
      p.read(); // warm-up
      double[] gbs = new double[runs];
      for (int i = 0; i < runs; i++) {
        gbs[i] = p.read();
      }
      return ShardBenchmark.median(gbs);
    }
  }

  /** VmHWM: the most resident memory this process has had since start or the last reset. */
  public static long peakRss() {
    return status("VmHWM:");
  }

  /** VmRSS: resident memory now, or -1 where /proc is not there. */
  public static long rss() {
    return status("VmRSS:");
  }

  private static long status(String key) {
    try {
      for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
        if (line.startsWith(key)) {
          return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
        }
      }
    } catch (IOException | NumberFormatException e) {
      return -1;
    }
    return -1;
  }

  /** Resets VmHWM to the current RSS (Linux: "5" to clear_refs); a no-op where that is not allowed. */
  public static void resetPeakRss() {
    System.gc();
    try {
      Files.writeString(Path.of("/proc/self/clear_refs"), "5");
    } catch (IOException | UnsupportedOperationException e) {
      // peak then counts from process start
    }
  }
}
