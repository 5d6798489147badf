package dev.dsd.testnet;

import static org.junit.jupiter.api.Assertions.assertEquals;

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
}
