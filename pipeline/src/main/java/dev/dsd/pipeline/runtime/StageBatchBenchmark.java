package dev.dsd.pipeline.runtime;

import dev.dsd.pipeline.model.ModelConfig;
import dev.dsd.pipeline.model.WeightSource;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * What batching buys a stage: for B sessions each verifying T new tokens on top of a warm cache of
 * W positions, the median time of one batched call ({@link StageBatchRunner}) against B
 * per-session calls ({@link ShardRunner}), and the share of the batched call spent copying caches
 * into the padded past. Runs the first shard of the given range (token ids in).
 */
public final class StageBatchBenchmark {
  /** One row of the result; times in milliseconds, {@code gatherShare} in [0, 1]. */
  public record Row(int rows, int tokens, double batchedMs, double soloMs, double gatherShare) {
    public double speedup() {
      return soloMs / batchedMs;
    }
  }

  private StageBatchBenchmark() {}

  public static List<Row> run(ModelConfig c, WeightSource w, int to, int warm, int tokens, int[] rowCounts,
      int iterations, int threads) {
    int maxB = Arrays.stream(rowCounts).max().orElse(1);
    int cap = warm + tokens;
    SplittableRandom rnd = new SplittableRandom(3);
    RunnerOptions o = new RunnerOptions(threads, maxB + 1, RunnerOptions.DEFAULT_KV_BUDGET_BYTES,
        RunnerOptions.DEFAULT_IDLE_TIMEOUT);
    List<Row> out = new ArrayList<>();
    try (StageBatchRunner batch = new StageBatchRunner(c, w, 0, to, o);
        ShardRunner solo = new ShardRunner(c, w, 0, to, o)) {
      StageKv[] kv = new StageKv[maxB];
      ShardSession[] ss = new ShardSession[maxB];
      int[][] fresh = new int[maxB][];
      for (int i = 0; i < maxB; i++) {
        int[] prefix = rnd.ints(warm, 0, c.vocabSize()).toArray();
        fresh[i] = rnd.ints(tokens, 0, c.vocabSize()).toArray();
        kv[i] = batch.openSession("b" + i, "bench", cap);
        batch.forward(List.of(StageBatchRunner.Row.tokens(kv[i], prefix)));
        ss[i] = solo.openSession("s" + i, "bench", cap);
        solo.forwardTokens(ss[i], prefix);
      }
      for (int b : rowCounts) {
        double[] batched = new double[iterations];
        double[] single = new double[iterations];
        long gather0 = 0;
        long call0 = 0;
        for (int it = -3; it < iterations; it++) { // 3 warm-up rounds
          if (it == 0) {
            gather0 = batch.gatherNanos();
            call0 = batch.callNanos();
          }
          List<StageBatchRunner.Row> rows = new ArrayList<>();
          for (int i = 0; i < b; i++) {
            kv[i].truncate(warm);
            rows.add(StageBatchRunner.Row.tokens(kv[i], fresh[i]));
          }
          long t0 = System.nanoTime();
          batch.forward(rows);
          long t1 = System.nanoTime();
          for (int i = 0; i < b; i++) {
            ss[i].truncate(warm);
            solo.forwardTokens(ss[i], fresh[i]);
          }
          long t2 = System.nanoTime();
          if (it >= 0) {
            batched[it] = (t1 - t0) / 1e6;
            single[it] = (t2 - t1) / 1e6;
          }
        }
        double share = (double) (batch.gatherNanos() - gather0) / Math.max(1, batch.callNanos() - call0);
        out.add(new Row(b, tokens, ShardBenchmark.median(batched), ShardBenchmark.median(single), share));
      }
    }
    return out;
  }
}
