package dev.dsd.pipeline.runtime;

import dev.dsd.pipeline.model.ModelConfig;
import dev.dsd.pipeline.model.WeightSource;
import dev.dsd.pipeline.reference.ReferenceModel;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Median latency of one call that processes T new tokens on top of a warm KV cache, for the ONNX
 * runner and for the Java reference: the cost speculative verification pays for checking T-1
 * drafts. Each sample truncates the cache back to the warm length first, as a rejected round does.
 */
public final class ShardBenchmark {
  /** One row of the result. Times in milliseconds. */
  public record Row(int tokens, double onnxMedianMs, double referenceMedianMs) {
    public double ratio() {
      return referenceMedianMs / onnxMedianMs;
    }
  }

  private ShardBenchmark() {}

  public static List<Row> run(ModelConfig c, WeightSource w, int warm, int[] tokenCounts, int iterations,
      int referenceIterations, int threads) {
    int maxT = Arrays.stream(tokenCounts).max().orElse(1);
    if (warm + maxT > c.maxPositionEmbeddings()) {
      throw new IllegalArgumentException("warm cache " + warm + " + " + maxT + " tokens exceed the context of "
          + c.maxPositionEmbeddings());
    }
    SplittableRandom rnd = new SplittableRandom(1);
    int[] prefix = rnd.ints(warm, 0, c.vocabSize()).toArray();
    int[] fresh = rnd.ints(maxT, 0, c.vocabSize()).toArray();
    List<Row> rows = new ArrayList<>();
    ReferenceModel ref = new ReferenceModel(c, w, 0, c.numLayers());
    try (ShardRunner r = new ShardRunner(c, w, 0, c.numLayers(), RunnerOptions.defaults().withThreads(threads));
        ShardSession s = r.openSession("bench", "bench", warm + maxT)) {
      r.forwardTokens(s, prefix);
      ReferenceModel.Cache rc = ref.newCache(warm + maxT);
      ref.forwardTokens(rc, prefix);
      for (int t : tokenCounts) {
        int[] in = Arrays.copyOf(fresh, t);
        double[] onnx = new double[iterations];
        for (int i = -5; i < iterations; i++) { // 5 warm-up calls
          s.truncate(warm);
          long t0 = System.nanoTime();
          r.forwardTokens(s, in);
          if (i >= 0) {
            onnx[i] = (System.nanoTime() - t0) / 1e6;
          }
        }
        double[] java = new double[referenceIterations];
        for (int i = -1; i < referenceIterations; i++) {
          rc.truncate(warm);
          long t0 = System.nanoTime();
          ref.forwardTokens(rc, in);
          if (i >= 0) {
            java[i] = (System.nanoTime() - t0) / 1e6;
          }
        }
        rows.add(new Row(t, median(onnx), median(java)));
      }
    }
    return rows;
  }

  static double median(double[] v) {
    double[] s = v.clone();
    Arrays.sort(s);
    return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  }
}
