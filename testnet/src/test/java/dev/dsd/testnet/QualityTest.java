package dev.dsd.testnet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class QualityTest {
  @Test
  void measuresRepetitionAndDivergence() {
    assertEquals(1.0, Quality.distinct4(new int[] {1, 2, 3, 4, 5, 6}));
    assertEquals(3 / 6.0, Quality.distinct4(new int[] {1, 2, 3, 1, 2, 3, 1, 2, 3}), 1e-12, "a loop of three");
    assertEquals(2, Quality.firstDivergence(new int[] {1, 2, 3}, new int[] {1, 2, 4, 5}));
    assertEquals(3, Quality.firstDivergence(new int[] {1, 2, 3}, new int[] {1, 2, 3, 5}));
    assertEquals(2, Quality.editDistance(new int[] {1, 2, 3}, new int[] {1, 3, 4}));
    assertEquals(4, Quality.editDistance(new int[0], new int[] {1, 2, 3, 4}));
  }

  @Test
  void distinctNCountsEveryOrder() {
    assertEquals(3 / 7.0, Quality.distinctN(new int[] {1, 2, 3, 1, 2, 3, 1, 2, 3}, 3), 1e-12, "a loop of three");
    assertEquals(1.0, Quality.distinctN(new int[] {1, 2}, 3), "too short to repeat");
    assertEquals(3 / 4.0, Quality.distinctN(new int[] {5, 5, 6, 7}, 1), 1e-12);
  }

  @Test
  void theNextLineMustFollowTheBreakExactly() {
    assertTrue(QualityBench.nextLineMatches("\n    return x\n", "    return x"));
    assertTrue(QualityBench.nextLineMatches("\n    return x  \nmore", "    return x"), "trailing spaces aside");
    assertTrue(QualityBench.nextLineMatches("\n    return x", "    return x"), "output ends with the line");
    assertFalse(QualityBench.nextLineMatches("\n  return x\n", "    return x"), "indentation counts");
    assertFalse(QualityBench.nextLineMatches("\n    return xy\n", "    return x"), "the whole line");
    assertFalse(QualityBench.nextLineMatches(", y)\n    return x\n", "    return x"), "must end the prompt's line first");
  }

  @Test
  void nextLineSimilarityIsOneMinusCharacterEditDistanceOverTheLongerLine() {
    assertEquals(1.0, QualityBench.nextLineSimilarity("\n    return x\n", "    return x"));
    assertEquals(1 - 1 / 12.0, QualityBench.nextLineSimilarity("\n    return y\nz", "    return x"), 1e-12);
    assertEquals(1 - 2 / 12.0, QualityBench.nextLineSimilarity("\n    return", "    return x"), 1e-12, "cut short");
    assertEquals(0.0, QualityBench.nextLineSimilarity("x)\n    return x", "    return x"), "did not end the line");
  }
}
