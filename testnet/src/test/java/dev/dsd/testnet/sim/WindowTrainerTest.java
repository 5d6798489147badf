package dev.dsd.testnet.sim;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.verification.window.AcceptanceState;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class WindowTrainerTest {
  /**
   * Greedy traces where, from any position, the drafts either fail at once or all 16 stand, half
   * and half: the geometric model cannot say that, a hazard that grows with j can.
   */
  static AcceptanceTrace bimodal(long seed, int prompts) {
    SplittableRandom rng = new SplittableRandom(seed);
    List<AcceptanceTrace.Prompt> ps = new ArrayList<>();
    for (int i = 0; i < prompts; i++) {
      int[] match = new int[128];
      for (int p = 0; p < match.length; p++) {
        match[p] = rng.nextBoolean() ? 0 : 16;
      }
      ps.add(new AcceptanceTrace.Prompt(32, 128, match, 0, Map.of()));
    }
    return new AcceptanceTrace("t", "d", "model", 0, 128, 16, ps);
  }

  @Test
  void learnsAHazardTheGeometricModelMissesAndBeatsItOnHeldOutTraces() {
    WindowTrainer.Result r = WindowTrainer.train(List.of(bimodal(1, 20)), List.of(bimodal(2, 10)), 16, 5, Map.of());
    assertTrue(r.heldOutLogLoss() < 0.9 * r.geometricLogLoss(), r.heldOutLogLoss() + " vs " + r.geometricLogLoss());
    AcceptanceState s = new AcceptanceState();
    s.observe(4, 0);
    double first = r.model().continueProbability(s, 1);
    double later = r.model().continueProbability(s, 3);
    // a draft that follows accepted ones is likelier to stand than the first: the geometric model's
    // single rate cannot say that
    assertTrue(first > 0.35 && first < 0.65 && later > 0.9, "first " + first + ", third " + later);
  }

  @Test
  void sampledRoundsLabelOnlyWhatTheyShow() {
    List<WindowTrainer.Example> out = new ArrayList<>();
    AcceptanceTrace t = new AcceptanceTrace("t", "d", "model", 0.8, 16, 16,
        List.of(new AcceptanceTrace.Prompt(8, 16, null, 0.4, Map.of(4, new int[] {0, 4, 2}))));
    out.addAll(WindowTrainer.examples(List.of(t), 16, 1));
    // round 1: j=1 rejected; round 2: j=1..4 accepted (window end); round 3: j=1,2 accepted, j=3 rejected
    assertTrue(out.size() == 1 + 4 + 3, "examples: " + out.size());
    boolean[] labels = new boolean[out.size()];
    for (int i = 0; i < labels.length; i++) {
      labels[i] = out.get(i).accepted();
    }
    assertArrayEquals(new boolean[] {false, true, true, true, true, true, true, false}, labels);
  }

  @Test
  void solvesSmallSystems() {
    double[] x = WindowTrainer.solve(new double[][] {{0, 2}, {3, 1}}, new double[] {4, 5});
    assertArrayEquals(new double[] {1, 2}, x, 1e-12);
  }
}
