package dev.dsd.verification.tree;

/**
 * Picks the tree budget that maximizes expected tokens per second of the round:
 *
 * <pre>
 *   n* = argmax_n (1 + c * S(n)) / (F + b * (n + 1))
 * </pre>
 *
 * where S(n) is the sum of the n best path scores (the draft's expected accepted tokens, EAGLE-2's
 * observation), c calibrates it against what the target actually accepted, b is the cost of one
 * more position (the stages' compute and the drafting, which grows the tree deeper), and F the rest
 * of a round (link latencies, the fixed part of each stage call and of drafting). On a slow link F dwarfs b and wide trees pay; on a fast link or under load (a busy
 * stage's compute grows with positions) the budget shrinks. c, b and F are exponentially weighted
 * estimates from the rounds so far; b is the slope of stage compute over positions where the
 * rounds vary enough to show it, else the prior that a position costs a fourteenth of a one-token
 * call (measured on this machine: 8 positions ≈ 1.5× one; see FACTS).
 */
public final class AutoTreeBudget implements TreeBudget {
  /** Candidates a round may carry at most. */
  public static final int MAX_NODES = 64;
  /** Nodes before anything is measured. */
  public static final int START_NODES = 16;
  private static final double WEIGHT = 0.2; // of the newest round in the running estimates
  private static final double PRIOR_POSITIONS_PER_CALL = 14;

  private double acceptedAvg;
  private double predictedAvg;
  private double meanP;
  private double meanC;
  private double varP;
  private double covPC;
  private double fixedNanos = -1;
  private double perPositionNanos;
  private int rounds;

  @Override
  public int choose(double[] sortedScores) {
    int limit = Math.min(MAX_NODES, sortedScores.length);
    if (rounds == 0) {
      return Math.min(START_NODES, limit);
    }
    double c = calibration();
    double best = -1;
    int bestN = 0;
    double sum = 0;
    for (int n = 0; n <= limit; n++) {
      if (n > 0) {
        sum += sortedScores[n - 1];
      }
      double rate = (1 + c * sum) / (fixedNanos + perPositionNanos * (n + 1));
      if (rate > best) {
        best = rate;
        bestN = n;
      }
    }
    return bestN;
  }

  /** Accepted over predicted nodes, in [0.02, 1.5]. */
  public double calibration() {
    return predictedAvg <= 0 ? 1 : Math.max(0.02, Math.min(1.5, acceptedAvg / predictedAvg));
  }

  public double perPositionNanos() {
    return perPositionNanos;
  }

  public double fixedNanos() {
    return fixedNanos;
  }

  @Override
  public void observe(int nodes, double predicted, int accepted, int positions, long roundNanos, long computeNanos,
      long draftNanos) {
    double w = rounds == 0 ? 1 : WEIGHT;
    if (nodes > 0) {
      acceptedAvg = predictedAvg == 0 ? accepted : (1 - WEIGHT) * acceptedAvg + WEIGHT * accepted;
      predictedAvg = predictedAvg == 0 ? predicted : (1 - WEIGHT) * predictedAvg + WEIGHT * predicted;
    }
    // what grows with positions: the stages' compute and the drafting (a bigger tree is grown deeper)
    double compute = (computeNanos < 0 ? roundNanos : computeNanos) + draftNanos;
    double dP = positions - meanP;
    double dC = compute - meanC;
    meanP += w * dP;
    meanC += w * dC;
    varP = (1 - w) * (varP + w * dP * dP);
    covPC = (1 - w) * (covPC + w * dP * dC);
    double prior = meanC / (meanP + PRIOR_POSITIONS_PER_CALL);
    perPositionNanos = varP > 1 ? Math.max(prior / 4, covPC / varP) : prior;
    double fixed = roundNanos + draftNanos - perPositionNanos * positions;
    fixedNanos = fixedNanos < 0 ? fixed : (1 - WEIGHT) * fixedNanos + WEIGHT * fixed;
    fixedNanos = Math.max(fixedNanos, 1);
    rounds++;
  }
}
