package dev.dsd.verification.acceptance;

/**
 * Decides how many of k draft tokens the target accepts and what token follows them.
 *
 * <p>Inputs of one round: the k draft tokens, the draft's distributions they were drawn from
 * (rows of the vocabulary; null for a deterministic drafter such as greedy or prompt lookup), and
 * the target's scores at k+1 positions: row i predicts the token after draft i (row 0 the token
 * after the last accepted one). A round always yields {@code accepted + 1} tokens.
 */
public interface AcceptanceRule {

  /**
   * {@link Verdict#next} when all k drafts stand and the target gave only k rows: in pipelined
   * speculation a round's last draft is the first token of the next round, already in flight, so
   * there is no bonus token to draw; the next round's scores continue the verification.
   */
  int NO_BONUS = -1;

  /** How many drafts were accepted (0..k) and the correction (or bonus, or {@link #NO_BONUS}) token after them. */
  record Verdict(int accepted, int next) {}

  Verdict decide(int[] draft, double[][] draftDistributions, TargetScores target);

  /** The same on full logits ({@code (k+1) × vocab}, row-major). */
  default Verdict decide(int[] draft, double[][] draftDistributions, float[] targetLogits, int vocab) {
    return decide(draft, draftDistributions, scores(targetLogits, vocab));
  }

  /** Full logits seen the way this rule reads them (its temperature and top-p). */
  TargetScores scores(float[] logits, int vocab);

  /** Whether the output distribution equals sampling from the target alone. */
  boolean lossless();
}
