package dev.dsd.verification.window;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import org.junit.jupiter.api.Test;

class AcceptanceHazardTest {
  private static double[] constant(double p) {
    double[] w = new double[AcceptanceState.FEATURES.size()];
    w[0] = Math.log(p / (1 - p));
    return w;
  }

  @Test
  void aConstantHazardYieldsTheGeometricFormula() {
    AcceptanceHazard h = new AcceptanceHazard(constant(0.7), Map.of());
    AcceptanceState s = new AcceptanceState();
    for (int k = 0; k <= 16; k++) {
      assertEquals(AdaptiveWindow.expectedTokens(0.7, k), h.expectedTokens(s, k), 1e-9, "k=" + k);
    }
  }

  @Test
  void theFileRoundTripsAndNamesItsFeatures() {
    double[] w = {0.5, -1.25, 2, 0, 1e-3, -0.5, 3};
    AcceptanceHazard h = new AcceptanceHazard(w, Map.of("trained_by", "a test"));
    String text = h.format();
    assertTrue(text.startsWith("format " + AcceptanceHazard.FORMAT + "\nfeatures bias logit_a"), text);
    assertArrayEquals(w, AcceptanceHazard.parse(text).weights(), 0);
    assertTrue(AcceptanceHazard.parse(text).format().contains("trained_by a test"));
  }

  @Test
  void aFileForOtherFeaturesOrBrokenIsRefusedWithTheReason() {
    String ok = new AcceptanceHazard(constant(0.5), Map.of()).format();
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> AcceptanceHazard.parse(ok.replace("last_full_log_j", "draft_entropy")));
    assertTrue(e.getMessage().contains("draft_entropy"), e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> AcceptanceHazard.parse(ok.replace("/1", "/2")));
    assertThrows(IllegalArgumentException.class, () -> AcceptanceHazard.parse(ok.replace("weights 0.0", "weights x")));
    assertThrows(IllegalArgumentException.class, () -> AcceptanceHazard.parse(ok.replace("weights 0.0", "weights NaN")));
    assertThrows(IllegalArgumentException.class, () -> AcceptanceHazard.parse(ok.replace("weights 0.0 ", "weights ")));
    assertThrows(IllegalArgumentException.class, () -> AcceptanceHazard.parse("x".repeat(70_000)));
  }

  @Test
  void theShippedModelLoadsAndExpectsLongerRunsOnceDraftsStand() {
    AcceptanceHazard h = AcceptanceHazard.shipped();
    AcceptanceState s = new AcceptanceState();
    s.observe(4, 4);
    for (int j = 1; j <= 16; j++) {
      double p = h.continueProbability(s, j);
      assertTrue(p > 0 && p < 1, "j=" + j + " p=" + p);
    }
  }

  @Test
  void stateFollowsRoundsAndRefusesImpossibleOnes() {
    AcceptanceState s = new AcceptanceState();
    assertEquals(0.5, s.rate(), 1e-12);
    double[] before = s.features(1);
    assertEquals(0.5, before[2], 0); // no round yet: last fraction neutral
    s.observe(4, 4);
    assertEquals((0.9 + 4) / (0.9 + 4 + 0.9), s.rate(), 1e-12);
    assertEquals(1, s.features(3)[3], 0);
    assertEquals(Math.log(3), s.features(3)[4], 1e-12);
    for (int i = 0; i < 200; i++) {
      s.observe(8, 8); // a long run of full accepts: the rate nears 1, its logit stays finite
    }
    for (double x : s.features(16)) {
      assertTrue(Double.isFinite(x));
    }
    assertThrows(IllegalArgumentException.class, () -> s.observe(2, 3));
    assertThrows(IllegalArgumentException.class, () -> s.observe(0, 0));
  }

  @Test
  void aLearnedWindowIsAnAdaptiveWindowThatKeepsItsModelAcrossRequests() {
    WindowMemory m = new WindowMemory(0, 16, new AcceptanceHazard(constant(0.9), Map.of()));
    AdaptiveWindow w = m.start("r");
    assertTrue(w.learned());
    for (int i = 0; i < AdaptiveWindow.WARMUP_ROUNDS + 2; i++) {
      int k = Math.max(1, w.next());
      w.observe(k, k, 1_000_000, 2_000_000 + 100_000L * k, 50_000_000);
    }
    m.finish("r", w);
    assertTrue(m.start("r").learned());
    // a costly round trip and acceptance near 1: the longest window pays
    assertEquals(16, w.next());
  }
}
