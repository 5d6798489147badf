package dev.dsd.verification.tree;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The tree budget follows what a round costs and what the draft's scores are worth. */
class AutoTreeBudgetTest {
  static double[] scores(int n, double decay) {
    double[] s = new double[n];
    double v = 0.9;
    for (int i = 0; i < n; i++) {
      s[i] = v;
      v *= decay;
    }
    return s;
  }

  /** Rounds where the target accepts {@code accepted} of each tree and a round costs fixed + perNode * positions. */
  static AutoTreeBudget trained(double fixedMs, double perNodeMs, double accepted) {
    AutoTreeBudget b = new AutoTreeBudget();
    double[] s = scores(AutoTreeBudget.MAX_NODES, 0.95);
    for (int r = 0; r < 40; r++) {
      int n = b.choose(s) + (r % 3 == 0 ? 4 : 0); // some variety, as trees of different sizes do
      n = Math.min(n, s.length);
      int k = (int) Math.round(Math.min(n, accepted));
      int[] path = new int[k];
      for (int i = 0; i < k; i++) {
        path[i] = i; // the best nodes are the accepted ones
      }
      long compute = (long) ((1 + perNodeMs * (n + 1)) * 1e6);
      long round = compute + (long) (fixedMs * 1e6);
      b.observe(java.util.Arrays.copyOf(s, n), path, n + 1, round, compute, 0);
    }
    return b;
  }

  @Test
  void slowLinksGrowTreesAndCostlyPositionsShrinkThem() {
    double[] s = scores(AutoTreeBudget.MAX_NODES, 0.95);
    int slowLink = trained(100, 0.05, 3).choose(s);
    int costly = trained(1, 2, 3).choose(s);
    assertTrue(slowLink > costly, "slow link " + slowLink + " vs costly positions " + costly);
    assertTrue(slowLink >= 32, "a 100 ms round with cheap positions takes a wide tree: " + slowLink);
    assertTrue(costly <= 8, "positions costing 2 ms each against 1 ms of link: " + costly);
  }

  @Test
  void anOverconfidentDraftIsCalibratedDown() {
    AutoTreeBudget b = trained(20, 0.5, 0);
    assertEquals(0.02, b.calibration(), 1e-9, "nothing accepted: the scores are worth the floor");
    int n = b.choose(scores(AutoTreeBudget.MAX_NODES, 0.95));
    assertTrue(n >= 2 && n < 8, "small trees, but a probe still goes: " + n);
  }

  @Test
  void aDraftThatStartsAgreeingGetsItsTreesBack() {
    AutoTreeBudget b = trained(100, 0.05, 0);
    double[] s = scores(AutoTreeBudget.MAX_NODES, 0.95);
    for (int r = 0; r < 200; r++) { // the probes' best nodes are now accepted
      int n = b.choose(s);
      int[] path = n >= 2 ? new int[] {0, 1} : new int[0];
      long compute = (long) ((1 + 0.05 * (n + 1)) * 1e6);
      b.observe(java.util.Arrays.copyOf(s, n), path, n + 1, compute + 100_000_000L, compute, 0);
    }
    assertTrue(b.choose(s) > 8, "trees grow again: " + b.choose(s));
  }

  @Test
  void lowRankedNodesThatAreNeverAcceptedAreNotSent() {
    // the best few nodes are accepted as predicted, the rest never: trees stop short of the dead weight
    AutoTreeBudget b = trained(100, 0.05, 3);
    double[] c = b.bandCalibration();
    assertTrue(c[0] > 0.5 && c[c.length - 1] <= 0.05, java.util.Arrays.toString(c));
  }

  @Test
  void fixedBudgetsTakeWhatTheySay() {
    assertEquals(5, TreeBudget.fixed(5).choose(scores(10, 0.9)));
    assertEquals(3, TreeBudget.fixed(5).choose(scores(3, 0.9)));
    assertEquals(AutoTreeBudget.START_NODES, new AutoTreeBudget().choose(scores(64, 0.9)));
  }
}
