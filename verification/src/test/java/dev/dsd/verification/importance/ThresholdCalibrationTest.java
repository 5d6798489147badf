package dev.dsd.verification.importance;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.verification.importance.ThresholdCalibration.Budget;
import dev.dsd.verification.importance.ThresholdCalibration.Point;
import java.util.List;
import org.junit.jupiter.api.Test;

class ThresholdCalibrationTest {
  static final Budget BUDGET = new Budget(0.025, 0.02, 0.02);

  @Test
  void picksTheLargestGapWithinBudgetUnderEverySampling() {
    List<Point> sweep = List.of(
        new Point("greedy", 0, 0.40, 0.6, 0.50, 0.70),
        new Point("greedy", 0.05, 0.40, 0.6, 0.50, 0.74),
        new Point("greedy", 0.1, 0.38, 0.6, 0.49, 0.78), // within: -0.02 and -0.01
        new Point("greedy", 0.2, 0.36, 0.6, 0.47, 0.82), // next line drops 0.04 > 0.025
        new Point("T=0.8", 0, 0.20, 0.6, 0.95, 0.30),
        new Point("T=0.8", 0.05, 0.20, 0.6, 0.95, 0.32),
        new Point("T=0.8", 0.1, 0.19, 0.6, 0.94, 0.35),
        new Point("T=0.8", 0.2, 0.19, 0.6, 0.94, 0.38));
    ThresholdCalibration.Choice c = ThresholdCalibration.choose(sweep, BUDGET);
    assertEquals(0.1, c.maxGap());
    assertEquals(3, c.verdicts().size(), "stops at the first gap that fails");
    assertTrue(c.verdicts().get(2).contains("next-line exact match"), c.verdicts().get(2));
  }

  @Test
  void aGapPastAFailureIsNotChosenEvenIfItPassesByChance() {
    List<Point> sweep = List.of(
        new Point("greedy", 0, 0.40, 0.6, 0.50, 0.70),
        new Point("greedy", 0.05, 0.40, 0.6, 0.40, 0.74), // repetition: distinct 4-grams drop 0.10
        new Point("greedy", 0.1, 0.40, 0.6, 0.50, 0.78));
    assertEquals(0.0, ThresholdCalibration.choose(sweep, BUDGET).maxGap());
  }

  @Test
  void nextLineSimilarityHasItsOwnBudget() {
    List<Point> sweep = List.of(
        new Point("greedy", 0, 0.0, 0.50, 0.40, 0.70),
        new Point("greedy", 0.01, 0.0, 0.49, 0.40, 0.72),
        new Point("greedy", 0.02, 0.0, 0.45, 0.40, 0.74)); // exact match cannot drop below 0, similarity can
    ThresholdCalibration.Choice c = ThresholdCalibration.choose(sweep, BUDGET);
    assertEquals(0.01, c.maxGap());
    assertTrue(c.verdicts().get(1).contains("similarity"), c.verdicts().get(1));
  }

  @Test
  void noSpeedGainMeansNoRelaxation() {
    List<Point> sweep = List.of(new Point("greedy", 0, 0.40, 0.6, 0.50, 0.70), new Point("greedy", 0.05, 0.40, 0.6, 0.50, 0.70));
    ThresholdCalibration.Choice c = ThresholdCalibration.choose(sweep, BUDGET);
    assertEquals(0.0, c.maxGap());
    assertTrue(c.verdicts().get(0).contains("no gain"), c.verdicts().get(0));
  }

  @Test
  void everySamplingNeedsItsLosslessBaseline() {
    List<Point> sweep = List.of(new Point("greedy", 0, 0.4, 0.6, 0.5, 0.7), new Point("T=0.8", 0.1, 0.4, 0.6, 0.5, 0.8));
    assertThrows(IllegalArgumentException.class, () -> ThresholdCalibration.choose(sweep, BUDGET));
    assertThrows(IllegalArgumentException.class, () -> new Budget(-0.1, 0, 0));
  }
}
