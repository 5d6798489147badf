package dev.dsd.verification.acceptance;

import dev.dsd.verification.sampling.Distributions;

/**
 * Accepts drafts while each equals the target's argmax; the next token is the target's argmax at
 * the first disagreement (or after the last draft). The output is exactly the target's greedy output.
 */
public final class GreedyAcceptance implements AcceptanceRule {
  @Override
  public Verdict decide(int[] draft, double[][] q, float[] logits, int vocab) {
    int n = 0;
    while (n < draft.length && draft[n] == Distributions.argmax(logits, n * vocab, vocab)) {
      n++;
    }
    return new Verdict(n, Distributions.argmax(logits, n * vocab, vocab));
  }

  @Override
  public boolean lossless() {
    return true;
  }
}
