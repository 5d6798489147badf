package dev.dsd.verification.acceptance;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class LogitScoresTest {
  @Test
  void greedyProbabilityIsTheDistributionsEntryBitForBit() {
    int vocab = 300;
    int rows = 4;
    SplittableRandom rnd = new SplittableRandom(9);
    float[] logits = new float[rows * vocab];
    for (int i = 0; i < logits.length; i++) {
      logits[i] = (float) (rnd.nextGaussian() * 4);
    }
    for (int i = 0; i < rows; i++) {
      logits[i * vocab + vocab - 1] = Float.NEGATIVE_INFINITY; // a masked id, as the last stage sends
    }
    LogitScores lazy = new LogitScores(logits, vocab, 0, 1);
    LogitScores full = new LogitScores(logits, vocab, 0, 1);
    for (int r = 0; r < rows; r++) {
      for (int t : new int[] {0, 7, lazy.argmax(r), vocab - 1}) {
        assertEquals(Double.doubleToLongBits(full.distribution(r)[t]), Double.doubleToLongBits(lazy.probability(r, t)),
            "row " + r + " token " + t);
      }
    }
  }
}
