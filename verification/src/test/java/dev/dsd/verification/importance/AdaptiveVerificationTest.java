package dev.dsd.verification.importance;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.verification.acceptance.AcceptanceRule;
import dev.dsd.verification.acceptance.AdaptiveAcceptance;
import dev.dsd.verification.acceptance.GreedyAcceptance;
import dev.dsd.verification.acceptance.SpeculativeSampling;
import dev.dsd.verification.acceptance.TargetScores;
import java.util.Random;
import org.junit.jupiter.api.Test;

class AdaptiveVerificationTest {
  // A small decoded vocabulary as a code tokenizer would have it.
  static final String[] VOCAB = {"<|endoftext|>", "    ", "\n", "(", "):", " =", " the", " return", " self",
      " parse_line", " 42", "Error", " x", ","};

  static TokenImportance importance() {
    return TokenImportance.of(VOCAB.length, id -> VOCAB[id], TokenImportance.Weights.DEFAULT);
  }

  @Test
  void scoresFollowTheDocumentedClasses() {
    TokenImportance t = importance();
    assertEquals(0.0, t.score(1), "indentation");
    assertEquals(0.0, t.score(2), "newline");
    assertEquals(0.1, t.score(3), "punctuation");
    assertEquals(0.1, t.score(4));
    assertEquals(0.1, t.score(5), "operator");
    assertEquals(0.3, t.score(6), "function word");
    assertEquals(0.3, t.score(7), "keyword");
    assertEquals(0.9, t.score(9), "identifier");
    assertEquals(1.0, t.score(10), "number");
    assertTrue(t.unimportant(13));
    assertFalse(t.unimportant(11));
  }

  /** Target prefers token {@code favourite} by a little over {@code second}; the rest share little. */
  static float[] logits(int vocab, int favourite, int second) {
    float[] l = new float[vocab * 2];
    for (int r = 0; r < 2; r++) {
      l[r * vocab + favourite] = 2.0f;
      l[r * vocab + second] = 1.7f;
    }
    return l;
  }

  @Test
  void relaxesOnlyUnimportantTokensWhereTheTargetIsUnsure() {
    int v = VOCAB.length;
    // p(' x') = 0.297, p(',') = 0.220: ',' trails by 0.077
    AdaptiveAcceptance rule = new AdaptiveAcceptance(importance(), 0.1, 0, 1, 1);
    AcceptanceRule.Verdict v1 = rule.decide(new int[] {13}, null, logits(v, 12, 13), v);
    assertEquals(1, v1.accepted(), "',' is unimportant and within the gap");
    assertEquals(1, rule.relaxedAcceptances());
    AcceptanceRule.Verdict v2 = rule.decide(new int[] {9}, null, logits(v, 12, 9), v);
    assertEquals(new AcceptanceRule.Verdict(0, 12), v2, "' parse_line' is important: corrected to the argmax");
    AcceptanceRule.Verdict v3 = rule.decide(new int[] {3}, null, logits(v, 12, 13), v);
    assertEquals(0, v3.accepted(), "'(' is unimportant but the target is sure it is not next (gap 0.26)");
    AdaptiveAcceptance tight = new AdaptiveAcceptance(importance(), 0.05, 0, 1, 1);
    assertEquals(0, tight.decide(new int[] {13}, null, logits(v, 12, 13), v).accepted(), "0.077 is not below 0.05");
    assertFalse(rule.lossless());
    assertThrows(IllegalArgumentException.class, () -> new AdaptiveAcceptance(importance(), 1.0, 0, 1, 1));
    assertThrows(IllegalArgumentException.class, () -> new AdaptiveAcceptance(importance(), -0.1, 0, 1, 1));
  }

  /** Sampling may reject the argmax (the draft gave it more than the target); kept only at a near-tie. */
  @Test
  void aRejectedArgmaxIsKeptOnlyWhereTheTargetIsTorn() {
    int v = VOCAB.length;
    double[][] q = new double[1][v];
    q[0][13] = 1.0; // the draft is sure of ','; the target gives it 0.297: rejected with probability 0.7
    int kept = 0;
    int keptSure = 0;
    for (long seed = 0; seed < 200; seed++) {
      AdaptiveAcceptance torn = new AdaptiveAcceptance(importance(), 0.1, 1.0, 1.0, seed);
      kept += torn.decide(new int[] {13}, q, logits(v, 13, 12), v).accepted(); // margin 0.077 < 0.1
      AdaptiveAcceptance sure = new AdaptiveAcceptance(importance(), 0.05, 1.0, 1.0, seed);
      keptSure += sure.decide(new int[] {13}, q, logits(v, 13, 12), v).accepted(); // 0.077 >= 0.05
    }
    assertEquals(200, kept, "near-tie: always kept");
    assertTrue(keptSure > 20 && keptSure < 100, "otherwise the lossless rule's ~30%: " + keptSure);
  }

  /**
   * On random rounds, greedy and sampled: with the same seed the adaptive rule accepts at least what
   * the lossless rule accepts, agrees with it up to the lossless rejection, and where it goes further
   * the token the lossless rule rejected is of an unimportant class. With gap 0 it is the lossless rule.
   */
  @Test
  void neverAcceptsAnImportantTokenTheLosslessRuleRejects() {
    int v = VOCAB.length;
    TokenImportance imp = importance();
    Random r = new Random(3);
    int relaxed = 0;
    for (int trial = 0; trial < 3000; trial++) {
      int k = 1 + r.nextInt(5);
      float[] logits = new float[(k + 1) * v];
      float sharp = 0.5f + 3 * r.nextFloat();
      for (int i = 0; i < logits.length; i++) {
        logits[i] = (float) (r.nextGaussian() * sharp);
      }
      boolean sampled = r.nextBoolean();
      double temp = sampled ? 0.5 + r.nextDouble() : 0;
      double topP = sampled && r.nextBoolean() ? 0.9 : 1.0;
      long seed = r.nextLong();
      double[][] q = null;
      int[] draft = new int[k];
      AcceptanceRule lossless = sampled ? new SpeculativeSampling(temp, topP, seed) : new GreedyAcceptance();
      TargetScores scores = lossless.scores(logits, v);
      for (int i = 0; i < k; i++) {
        // a draft from the target's own support, so sampled drafts have p > 0 as a real drafter's would
        draft[i] = r.nextInt(3) == 0 ? scores.argmax(i) : r.nextInt(v);
        if (sampled && scores.probability(i, draft[i]) == 0) {
          draft[i] = scores.argmax(i);
        }
      }
      double gap = 0.05 + 0.4 * r.nextDouble();
      AcceptanceRule.Verdict want = lossless.decide(draft, q, scores);
      AdaptiveAcceptance adaptive = new AdaptiveAcceptance(imp, gap, temp, topP, seed);
      AcceptanceRule.Verdict got = adaptive.decide(draft, q, adaptive.scores(logits, v));
      assertTrue(got.accepted() >= want.accepted(), "trial " + trial);
      if (got.accepted() == want.accepted()) {
        assertEquals(want, got, "trial " + trial + ": nothing relaxed, so the lossless verdict");
      } else {
        int x = draft[want.accepted()];
        assertTrue(imp.unimportant(x), "trial " + trial + ": kept an important token the target rejected");
        double[] p = scores.distribution(want.accepted());
        int a = scores.argmax(want.accepted());
        assertTrue(p[a] - p[x] < gap, "trial " + trial + ": beyond the gap");
        assertTrue(TargetUncertainty.margin(p) < gap, "trial " + trial + ": the target was sure");
        relaxed++;
      }
      AdaptiveAcceptance zero = new AdaptiveAcceptance(imp, 0, temp, topP, seed);
      assertEquals(want, zero.decide(draft, q, zero.scores(logits, v)), "gap 0 is lossless");
    }
    assertTrue(relaxed > 100, "the relaxed path was exercised: " + relaxed);
  }
}
