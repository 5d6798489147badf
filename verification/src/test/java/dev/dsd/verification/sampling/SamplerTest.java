package dev.dsd.verification.sampling;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class SamplerTest {
  static final float[] LOGITS = {1f, 3f, 2f, 3f, -1f};

  @Test
  void greedyTakesTheLowestIdAmongTies() {
    assertEquals(1, Sampler.create(0, 1, 0).sample(LOGITS, 0, 5));
    assertEquals(2, new GreedySampler().sample(new float[] {9, 0, 1, 5}, 1, 3), "offset rows are read from offset");
  }

  @Test
  void topPKeepsTheSmallestNucleus() {
    double[] p = Distributions.softmax(LOGITS, 0, 5, 1.0);
    double[] kept = Distributions.topP(p, 0.5);
    // ids 1 and 3 are tied at the top and together hold > 50% of the mass
    assertTrue(kept[1] > 0 && kept[3] > 0 && kept[0] == 0 && kept[2] == 0 && kept[4] == 0);
    assertEquals(1.0, kept[1] + kept[3], 1e-12);
  }

  @Test
  void samplingFollowsTheDistributionAndTheSeed() {
    Sampler a = Sampler.create(1.0, 1.0, 42);
    Sampler b = Sampler.create(1.0, 1.0, 42);
    int[] counts = new int[5];
    int n = 200_000;
    for (int i = 0; i < n; i++) {
      int x = a.sample(LOGITS, 0, 5);
      assertEquals(x, b.sample(LOGITS, 0, 5), "same seed, same stream");
      counts[x]++;
    }
    double[] p = Distributions.softmax(LOGITS, 0, 5, 1.0);
    for (int i = 0; i < 5; i++) {
      double se = Math.sqrt(p[i] * (1 - p[i]) / n);
      assertEquals(p[i], counts[i] / (double) n, 6 * se, "token " + i);
    }
  }
}
