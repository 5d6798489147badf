package dev.dsd.verification.processing;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.verification.acceptance.LogitScores;
import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class PenaltyStateTest {
  static final int V = 7;

  /** The definitions written out plainly: recount the whole history for every row. */
  static float[] reference(float[] row, int[] history, int promptTokens, Penalties p) {
    float[] out = row.clone();
    for (int v = 0; v < V; v++) {
      int all = 0;
      int gen = 0;
      for (int i = 0; i < history.length; i++) {
        if (history[i] == v) {
          all++;
          gen += i >= promptTokens ? 1 : 0;
        }
      }
      double l = out[v];
      if (all > 0) {
        l = l < 0 ? l * p.repetition() : l / p.repetition();
      }
      l -= p.frequency() * gen + (gen > 0 ? p.presence() : 0);
      out[v] = (float) l;
    }
    return out;
  }

  @Test
  void eachRowSeesTheHistoryUpToItsPositionAcrossRollbacks() {
    SplittableRandom r = new SplittableRandom(4);
    Penalties p = new Penalties(1.3, 0.5, 0.25);
    int prompt = 3;
    PenaltyState state = new PenaltyState(p, prompt, V, 64);
    int[] history = new int[0];
    int keep = 0;
    for (int round = 0; round < 40; round++) {
      int t = round == 0 ? prompt + 1 : 1 + r.nextInt(5);
      int[] tokens = r.ints(t, 0, V).toArray();
      int rows = 1 + r.nextInt(t);
      float[] logits = new float[rows * V];
      for (int i = 0; i < logits.length; i++) {
        logits[i] = (float) (r.nextGaussian() * 3);
      }
      float[] raw = logits.clone();
      state.process(keep, tokens, logits, rows, V);
      int[] all = Arrays.copyOf(history, keep + t);
      System.arraycopy(tokens, 0, all, keep, t);
      for (int row = 0; row < rows; row++) {
        int upTo = keep + t - rows + row + 1;
        float[] want = reference(Arrays.copyOfRange(raw, row * V, row * V + V), Arrays.copyOf(all, upTo), prompt, p);
        assertArrayEquals(want, Arrays.copyOfRange(logits, row * V, row * V + V), 1e-5f, "round " + round + " row " + row);
      }
      history = all;
      keep = Math.max(prompt, all.length - r.nextInt(4)); // a rollback of rejected drafts
      if (keep + 6 > 64) {
        break;
      }
    }
  }

  @Test
  void signsFollowHuggingFaceAndOpenAi() {
    PenaltyState s = new PenaltyState(new Penalties(2, 1, 0.5), 1, V, 8);
    float[] row = {4, -4, 4, 4, 0, 0, 0};
    s.process(0, new int[] {0, 1, 2, 2}, row, 1, V);
    assertEquals(2f, row[0], "prompt token: divided, no OpenAI penalty");
    assertEquals(-4 * 2f - 1 - 0.5f, row[1], 1e-6, "negative logit multiplied, then generated once: presence + frequency");
    assertEquals(4 / 2f - 1 - 2 * 0.5f, row[2], 1e-6, "two occurrences: frequency counts both");
    assertEquals(4f, row[3], "unseen tokens are untouched");
  }

  @Test
  void limitsAreEnforced() {
    assertThrows(IllegalArgumentException.class, () -> new Penalties(0, 0, 0));
    assertThrows(IllegalArgumentException.class, () -> new Penalties(1, 2.5, 0));
    assertThrows(IllegalArgumentException.class, () -> new Penalties(1, 0, Double.NaN));
    PenaltyState s = new PenaltyState(new Penalties(1.1, 0, 0), 0, V, 4);
    assertThrows(IllegalArgumentException.class, () -> s.process(0, new int[] {1, 2, 3, 4, 5}, new float[V], 1, V));
    assertThrows(IllegalArgumentException.class, () -> s.process(0, new int[] {9}, new float[V], 1, V));
    assertThrows(IllegalArgumentException.class, () -> s.process(2, new int[] {1}, new float[V], 1, V));
    assertTrue(!Penalties.NONE.active() && new Penalties(1, 0, 0.1).active());
  }

  @Test
  void logprobsAreTheLogSoftmaxOfTheRowAndTheTopListIsSorted() {
    float[] row = {1, 3, -2, 3, Float.NEGATIVE_INFINITY, 0.5f, 2};
    TokenLogprob lp = new LogitScores(row, V, 0.7, 0.9).logprob(0, 5, 3);
    double lse = 0;
    for (float l : row) {
      lse += Math.exp(l);
    }
    lse = Math.log(lse);
    assertEquals(0.5 - lse, lp.logprob(), 1e-9);
    assertArrayEquals(new int[] {1, 3, 6}, lp.topTokens(), "ties keep the lower id first");
    assertArrayEquals(new double[] {3 - lse, 3 - lse, 2 - lse}, lp.topLogprobs(), 1e-9);
    assertEquals(Double.NEGATIVE_INFINITY, new LogitScores(row, V, 0, 1).logprob(0, 4, 0).logprob());
  }
}
