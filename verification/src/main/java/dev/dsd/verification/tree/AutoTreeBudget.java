package dev.dsd.verification.tree;

/**
 * Picks the tree budget that maximizes expected tokens per second of the round:
 *
 * <pre>
 *   n* = argmax_n (1 + c * S(n)) / (F + b * (n + 1))
 * </pre>
 *
 * where S(n) is the sum of the n best path scores (the draft's expected accepted tokens, EAGLE-2's
 * observation), c calibrates it against what the target actually accepted, per band of score rank
 * (a draft is more overconfident about its 40th-best node than about its best: c is measured for
 * ranks 0-1, 2-3, 4-7, 8-15, 16-31 and 32-63, and a band not yet tried takes the last measured one), b is the cost of one
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
  /** The smallest tree sent: it keeps the best band's calibration current. */
  private static final int PROBE_NODES = 2;
  /** Per round, how much an unreached band's evidence fades; once gone, it borrows the band before it. */
  private static final double FADE = 0.95;

  /** First rank of each calibration band. */
  private static final int[] BANDS = {0, 2, 4, 8, 16, 32};
  private final double[] acceptedAvg = new double[BANDS.length];
  private final double[] predictedAvg = new double[BANDS.length];
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
    double[] c = bandCalibration();
    double best = -1;
    int bestN = 0;
    double sum = 0;
    for (int n = 0; n <= limit; n++) {
      if (n > 0) {
        sum += c[band(n - 1)] * sortedScores[n - 1];
      }
      double rate = (1 + sum) / (fixedNanos + perPositionNanos * (n + 1));
      if (n < Math.min(PROBE_NODES, limit)) {
        continue; // a probe always goes: without nodes nothing is learned and drafting would never resume
      }
      if (rate > best) {
        best = rate;
        bestN = n;
      }
    }
    return bestN;
  }

  /** Accepted over predicted nodes over all bands, in [0.02, 1.5]. */
  public double calibration() {
    double a = 0;
    double p = 0;
    for (int b = 0; b < BANDS.length; b++) {
      a += acceptedAvg[b];
      p += predictedAvg[b];
    }
    return p <= 0 ? 1 : clamp(a / p);
  }

  /** Accepted over predicted nodes per band of score rank; an untried band takes the one before. */
  public double[] bandCalibration() {
    double[] c = new double[BANDS.length];
    double last = 1;
    for (int b = 0; b < BANDS.length; b++) {
      last = predictedAvg[b] > 0 ? clamp(acceptedAvg[b] / predictedAvg[b]) : last;
      c[b] = last;
    }
    return c;
  }

  private static double clamp(double c) {
    return Math.max(0.02, Math.min(1.5, c));
  }

  private static int band(int rank) {
    int b = 0;
    while (b + 1 < BANDS.length && rank >= BANDS[b + 1]) {
      b++;
    }
    return b;
  }

  public double perPositionNanos() {
    return perPositionNanos;
  }

  public double fixedNanos() {
    return fixedNanos;
  }

  @Override
  public void observe(double[] scores, int[] accepted, int positions, long roundNanos, long computeNanos,
      long draftNanos) {
    double w = rounds == 0 ? 1 : WEIGHT;
    if (scores.length > 0) { // each node's rank among the tree's scores says which band it counts in
      Integer[] order = new Integer[scores.length];
      for (int i = 0; i < order.length; i++) {
        order[i] = i;
      }
      java.util.Arrays.sort(order, (a, b) -> scores[a] != scores[b] ? Double.compare(scores[b], scores[a])
          : Integer.compare(a, b));
      int[] bandOf = new int[scores.length];
      double[] predicted = new double[BANDS.length];
      double[] got = new double[BANDS.length];
      for (int rank = 0; rank < order.length; rank++) {
        bandOf[order[rank]] = band(rank);
        predicted[band(rank)] += scores[order[rank]];
      }
      for (int node : accepted) {
        got[bandOf[node]]++;
      }
      for (int b = 0; b < BANDS.length; b++) {
        if (predicted[b] > 0) { // only bands this tree reached learn from it
          boolean first = predictedAvg[b] == 0;
          acceptedAvg[b] = first ? got[b] : (1 - WEIGHT) * acceptedAvg[b] + WEIGHT * got[b];
          predictedAvg[b] = first ? predicted[b] : (1 - WEIGHT) * predictedAvg[b] + WEIGHT * predicted[b];
        } else { // stale evidence fades, so a band written off long ago is tried again when the best ones do well
          acceptedAvg[b] *= FADE;
          predictedAvg[b] *= FADE;
          if (predictedAvg[b] < 1e-3) {
            acceptedAvg[b] = 0;
            predictedAvg[b] = 0;
          }
        }
      }
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
