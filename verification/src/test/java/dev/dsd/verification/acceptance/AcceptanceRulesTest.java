package dev.dsd.verification.acceptance;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.verification.sampling.Distributions;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class AcceptanceRulesTest {
  static final int V = 6;

  static float[] rows(float[]... r) {
    float[] out = new float[r.length * V];
    for (int i = 0; i < r.length; i++) {
      System.arraycopy(r[i], 0, out, i * V, V);
    }
    return out;
  }

  static float[] peak(int id) {
    float[] l = new float[V];
    l[id] = 5;
    return l;
  }

  @Test
  void greedyAcceptsTheAgreeingPrefixAndCorrects() {
    GreedyAcceptance g = new GreedyAcceptance();
    float[] logits = rows(peak(2), peak(4), peak(1), peak(5));
    assertEquals(new AcceptanceRule.Verdict(3, 5), g.decide(new int[] {2, 4, 1}, null, logits, V), "all + bonus");
    assertEquals(new AcceptanceRule.Verdict(0, 2), g.decide(new int[] {3, 4, 1}, null, logits, V), "first rejected");
    assertEquals(new AcceptanceRule.Verdict(1, 4), g.decide(new int[] {2, 0, 1}, null, logits, V), "middle");
  }

  /**
   * Exactness: the first output token of a round must be distributed as p (the target at row 0),
   * whatever the draft distribution q. Chi-square goodness of fit over 200,000 rounds, V-1 = 5
   * degrees of freedom; the critical value at significance 0.001 is 20.515 (chi-square table).
   */
  @Test
  void speculativeSamplingReproducesTheTargetDistribution() {
    SplittableRandom r = new SplittableRandom(3);
    for (int trial = 0; trial < 3; trial++) {
      float[] l0 = new float[V];
      float[] l1 = new float[V];
      float[] ld = new float[V];
      for (int v = 0; v < V; v++) {
        l0[v] = (float) r.nextGaussian() * 2;
        l1[v] = (float) r.nextGaussian() * 2;
        ld[v] = (float) r.nextGaussian() * 2;
      }
      double temperature = 0.9;
      SpeculativeSampling rule = new SpeculativeSampling(temperature, 1.0, 100 + trial);
      double[] q = Distributions.softmax(ld, 0, V, temperature);
      double[] p = Distributions.softmax(l0, 0, V, temperature);
      float[] logits = rows(l0, l1);
      int n = 200_000;
      long[] counts = new long[V];
      SplittableRandom draws = new SplittableRandom(200 + trial);
      for (int i = 0; i < n; i++) {
        int x = Distributions.draw(q, draws.nextDouble());
        AcceptanceRule.Verdict v = rule.decide(new int[] {x}, new double[][] {q}, logits, V);
        counts[v.accepted() == 1 ? x : v.next()]++;
      }
      double chi2 = 0;
      for (int v = 0; v < V; v++) {
        double e = n * p[v];
        chi2 += (counts[v] - e) * (counts[v] - e) / e;
      }
      assertTrue(chi2 < 20.515, "trial " + trial + ": chi-square " + chi2 + " >= 20.515 (p < 0.001)");
    }
  }

  @Test
  void deterministicDraftsAreOneHot() {
    SpeculativeSampling rule = new SpeculativeSampling(1.0, 1.0, 9);
    float[] l0 = {0, 0, 0, 0, 0, 0};
    long[] counts = new long[V];
    int n = 60_000;
    for (int i = 0; i < n; i++) {
      AcceptanceRule.Verdict v = rule.decide(new int[] {3}, null, rows(l0, l0), V);
      counts[v.accepted() == 1 ? 3 : v.next()]++;
    }
    for (int v = 0; v < V; v++) {
      assertEquals(1.0 / V, counts[v] / (double) n, 0.01, "uniform target stays uniform, token " + v);
    }
  }
}
