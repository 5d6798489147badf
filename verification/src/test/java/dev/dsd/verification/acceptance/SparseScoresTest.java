package dev.dsd.verification.acceptance;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.verification.importance.TokenImportance;
import java.util.Random;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;

/** The summary the last stage sends must give the entry the same verdicts as the full logits. */
class SparseScoresTest {
  static final int V = 64;

  static TokenImportance importance() {
    // even ids read as whitespace (unimportant), odd ids as identifiers
    return TokenImportance.of(V, id -> id % 2 == 0 ? " " : "name" + id, TokenImportance.Weights.DEFAULT);
  }

  @Test
  void everyRuleDecidesTheSameOnTheSummary() {
    Random r = new Random(7);
    int relaxedSeen = 0;
    for (int trial = 0; trial < 400; trial++) {
      int k = 1 + r.nextInt(6);
      float[] logits = new float[(k + 1) * V];
      float sharp = 1 + r.nextInt(8);
      for (int i = 0; i < logits.length; i++) {
        logits[i] = (float) (r.nextGaussian() * sharp);
      }
      int[] drafts = new int[k];
      for (int i = 0; i < k; i++) {
        // often the argmax, so acceptance runs past the first draft
        drafts[i] = r.nextInt(3) == 0 ? r.nextInt(V) : argmax(logits, i);
      }
      long seed = r.nextLong();
      double temp = 0.3 + r.nextDouble();
      double topP = r.nextBoolean() ? 1.0 : 0.5 + r.nextDouble() / 2;
      check(() -> new GreedyAcceptance(), drafts, logits, false);
      check(() -> new SpeculativeSampling(temp, topP, seed), drafts, logits, true);
      check(() -> new AdaptiveAcceptance(importance(), 0.05, 0, 1, seed), drafts, logits, false);
      check(() -> new AdaptiveAcceptance(importance(), 0.05, temp, topP, seed), drafts, logits, true);
      AdaptiveAcceptance a = new AdaptiveAcceptance(importance(), 0.05, 0, 1, seed);
      a.decide(drafts, null, logits, V);
      relaxedSeen += (int) a.relaxedAcceptances();
    }
    assertTrue(relaxedSeen > 0, "the relaxed path was exercised");
  }

  private static void check(Supplier<AcceptanceRule> rule, int[] drafts, float[] logits, boolean sampling) {
    AcceptanceRule full = rule.get();
    TargetScores scores = full.scores(logits, V);
    AcceptanceRule.Verdict expected = full.decide(drafts, null, scores);
    SparseScores summary = SparseScores.summarize(rule.get().scores(logits, V), drafts, sampling);
    assertEquals(expected, rule.get().decide(drafts, null, summary));
  }

  @Test
  void topPRowsTravelSparse() {
    float[] logits = new float[V];
    logits[3] = 10;
    logits[5] = 9;
    SparseScores s = SparseScores.summarize(new LogitScores(logits, V, 1.0, 0.9), new int[0], true);
    assertEquals(2, s.ids()[0].length, "only the top-p support is sent");
    SparseScores dense = SparseScores.summarize(new LogitScores(logits, V, 1.0, 1.0), new int[0], true);
    assertEquals(null, dense.ids()[0], "a full-support row is sent dense");
  }

  @Test
  void rejectsMalformedSummaries() {
    assertThrows(IllegalArgumentException.class, () -> new SparseScores(V, new int[] {V}, new int[][] {{}}, new double[][] {{}}));
    assertThrows(IllegalArgumentException.class,
        () -> new SparseScores(V, new int[] {1}, new int[][] {{4, 2}}, new double[][] {{0.5, 0.5}}));
    assertThrows(IllegalArgumentException.class,
        () -> new SparseScores(V, new int[] {1}, new int[][] {{2}}, new double[][] {{Double.NaN}}));
    assertThrows(IllegalArgumentException.class, () -> new SparseScores(V, new int[] {1}, new int[][] {null}, new double[][] {{1}}));
  }

  private static int argmax(float[] logits, int row) {
    int best = 0;
    for (int i = 1; i < V; i++) {
      if (logits[row * V + i] > logits[row * V + best]) {
        best = i;
      }
    }
    return best;
  }
}
