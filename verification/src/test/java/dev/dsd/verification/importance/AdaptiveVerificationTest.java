package dev.dsd.verification.importance;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.verification.acceptance.AcceptanceRule;
import dev.dsd.verification.acceptance.AdaptiveAcceptance;
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

  /** Target prefers token 12 (" x") by a little; the draft proposed something else with p >= 0.1. */
  static float[] logits(int vocab, int favourite, int second) {
    float[] l = new float[vocab * 2];
    for (int r = 0; r < 2; r++) {
      l[r * vocab + favourite] = 2.0f;
      l[r * vocab + second] = 1.7f;
    }
    return l;
  }

  @Test
  void unimportantNearMissesAreAcceptedImportantOnesAreNot() {
    int v = VOCAB.length;
    AdaptiveAcceptance rule = new AdaptiveAcceptance(importance(), 0.1, 0, 1, 1);
    // draft ',' (unimportant), target's argmax is ' x' but gives ',' a fair share: accepted
    AcceptanceRule.Verdict v1 = rule.decide(new int[] {13}, null, logits(v, 12, 13), v);
    assertEquals(1, v1.accepted());
    assertEquals(1, rule.relaxedAcceptances());
    // draft ' parse_line' (important) in the same position: rejected, corrected to the argmax
    AcceptanceRule.Verdict v2 = rule.decide(new int[] {9}, null, logits(v, 12, 9), v);
    assertEquals(new AcceptanceRule.Verdict(0, 12), v2);
    // an unimportant token the target finds unlikely stays rejected
    AcceptanceRule.Verdict v3 = rule.decide(new int[] {3}, null, logits(v, 12, 13), v);
    assertEquals(0, v3.accepted());
    assertFalse(rule.lossless());
  }
}
