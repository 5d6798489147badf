package dev.dsd.verification.acceptance;


/**
 * Accepts drafts while each equals the target's argmax; the next token is the target's argmax at
 * the first disagreement (or after the last draft). The output is exactly the target's greedy output.
 */
public final class GreedyAcceptance implements AcceptanceRule {
  @Override
  public Verdict decide(int[] draft, double[][] q, TargetScores target) {
    int n = 0;
    while (n < draft.length && draft[n] == target.argmax(n)) {
      n++;
    }
    return new Verdict(n, n == target.rows() ? NO_BONUS : target.argmax(n));
  }

  @Override
  public TargetScores scores(float[] logits, int vocab) {
    return new LogitScores(logits, vocab, 0, 1);
  }

  @Override
  public boolean lossless() {
    return true;
  }
}
