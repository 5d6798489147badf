package dev.dsd.verification.importance;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class TargetUncertaintyTest {
  @Test
  void marginIsTopOneMinusTopTwo() {
    assertEquals(0.3, TargetUncertainty.margin(new double[] {0.1, 0.5, 0.2, 0.2}), 1e-12);
    assertEquals(0.0, TargetUncertainty.margin(new double[] {0.4, 0.1, 0.4, 0.1}), 1e-12, "a tie");
    assertEquals(1.0, TargetUncertainty.margin(new double[] {0, 0, 1, 0}), 1e-12, "one-hot");
    assertEquals(0.0, TargetUncertainty.margin(new double[] {0.25, 0.25, 0.25, 0.25}), 1e-12, "uniform");
    assertEquals(0.6, TargetUncertainty.margin(new double[] {0.8, 0.2}), 1e-12, "order does not matter");
    assertEquals(0.6, TargetUncertainty.margin(new double[] {0.2, 0.8}), 1e-12);
  }

  @Test
  void entropyInNats() {
    assertEquals(0.0, TargetUncertainty.entropy(new double[] {0, 1, 0}), 1e-12);
    assertEquals(Math.log(4), TargetUncertainty.entropy(new double[] {0.25, 0.25, 0.25, 0.25}), 1e-12);
    assertEquals(Math.log(2), TargetUncertainty.entropy(new double[] {0.5, 0, 0.5}), 1e-12);
    double h = -(0.7 * Math.log(0.7) + 0.2 * Math.log(0.2) + 0.1 * Math.log(0.1));
    assertEquals(h, TargetUncertainty.entropy(new double[] {0.7, 0.2, 0.1}), 1e-12);
  }

  @Test
  void gapIsHowFarATokenTrailsTheArgmax() {
    assertEquals(0.3, TargetUncertainty.gap(0.5, 0.2), 1e-12);
    assertEquals(0.0, TargetUncertainty.gap(0.5, 0.5), 1e-12, "the argmax itself");
    assertEquals(0.0, TargetUncertainty.gap(0.5, 0.5000001), 1e-12, "rounding in a summary never makes it negative");
  }
}
