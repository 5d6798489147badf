package dev.dsd.verification.acceptance;

import dev.dsd.verification.importance.TargetUncertainty;
import dev.dsd.verification.importance.TokenImportance;

/**
 * DSD's adaptive relaxation: a rejected draft token is kept only where its class is unimportant
 * ({@link TokenImportance}) and the target itself is unsure there. For a token other than the
 * target's argmax, unsure means it trails the argmax by less than {@code maxGap} in probability
 * ({@link TargetUncertainty#gap}); for the argmax itself (which only sampling rejects) the
 * target's top-2 margin must be below {@code maxGap}. A token the target gives no mass is never
 * kept, and {@code maxGap = 0} keeps nothing. Counts what it kept, for the node's metrics.
 */
public final class UnsureUnimportant implements Relaxation {
  private final TokenImportance importance;
  private final double maxGap;
  private long kept;

  /** @param maxGap in [0, 1); the node reads the calibrated value from the model's {@code adaptive-verification.json} */
  public UnsureUnimportant(TokenImportance importance, double maxGap) {
    if (!(maxGap >= 0 && maxGap < 1)) {
      throw new IllegalArgumentException("adaptive verification's max gap must be in [0, 1), got " + maxGap);
    }
    this.importance = importance;
    this.maxGap = maxGap;
  }

  @Override
  public boolean keep(int row, int x, TargetScores target) {
    if (!importance.unimportant(x) || !(target.probability(row, x) > 0)) {
      return false;
    }
    int a = target.argmax(row);
    // sampling rows are whole, so the argmax's margin can be read; greedy rows never reject the argmax
    double unsure = x == a ? TargetUncertainty.margin(target.distribution(row))
        : TargetUncertainty.gap(target.probability(row, a), target.probability(row, x));
    if (unsure < maxGap) {
      kept++;
      return true;
    }
    return false;
  }

  public double maxGap() {
    return maxGap;
  }

  /** Tokens kept only because of this relaxation. */
  public long kept() {
    return kept;
  }
}
