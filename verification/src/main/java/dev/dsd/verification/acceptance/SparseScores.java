package dev.dsd.verification.acceptance;

import java.util.Arrays;

/**
 * The part of the target's output that acceptance needs, small enough to send from the last
 * pipeline stage to the entry instead of {@code (k+1) × vocab} logits: per row the argmax and the
 * tokens the distribution gives mass to. A greedy session needs only the argmax, plus (for
 * adaptive verification) the probabilities of each draft token and of the argmax; a sampling
 * session needs the whole distribution, but after top-p it is usually a small support. Built by {@link #summarize}, whose
 * verdicts equal those on the full scores for every rule (a test checks it).
 *
 * @param ids per row the token ids with mass (ascending), or null where the row is dense
 * @param probs per row the probabilities of {@code ids}, or the dense row
 */
public record SparseScores(int vocab, int[] argmax, int[][] ids, double[][] probs) implements TargetScores {

  /**
   * Summarizes {@code full} for rules reading {@code drafts}. Sampling rows are sent whole (sparse
   * when at most half the vocabulary has mass, else dense); greedy rows carry the draft token and the argmax.
   */
  public static SparseScores summarize(TargetScores full, int[] drafts, boolean sampling) {
    int rows = full.rows();
    int[] argmax = new int[rows];
    int[][] ids = new int[rows][];
    double[][] probs = new double[rows][];
    for (int r = 0; r < rows; r++) {
      argmax[r] = full.argmax(r);
      if (sampling) {
        double[] p = full.distribution(r);
        int support = 0;
        for (double v : p) {
          support += v > 0 ? 1 : 0;
        }
        if (support * 2 > p.length) {
          probs[r] = p.clone();
          continue;
        }
        ids[r] = new int[support];
        probs[r] = new double[support];
        for (int t = 0, j = 0; t < p.length; t++) {
          if (p[t] > 0) {
            ids[r][j] = t;
            probs[r][j++] = p[t];
          }
        }
      } else if (r < drafts.length) {
        // the draft token and the argmax: adaptive verification reads how far one trails the other
        int a = Math.min(drafts[r], argmax[r]);
        int b = Math.max(drafts[r], argmax[r]);
        ids[r] = a == b ? new int[] {a} : new int[] {a, b};
        probs[r] = a == b ? new double[] {full.probability(r, a)}
            : new double[] {full.probability(r, a), full.probability(r, b)};
      } else {
        ids[r] = new int[0];
        probs[r] = new double[0];
      }
    }
    return new SparseScores(full.vocab(), argmax, ids, probs);
  }

  public SparseScores {
    if (argmax.length != ids.length || ids.length != probs.length) {
      throw new IllegalArgumentException("rows disagree: " + argmax.length + ", " + ids.length + ", " + probs.length);
    }
    for (int r = 0; r < argmax.length; r++) {
      if (argmax[r] < 0 || argmax[r] >= vocab) {
        throw new IllegalArgumentException("argmax " + argmax[r] + " of row " + r + " is outside the vocabulary " + vocab);
      }
      if (ids[r] == null ? probs[r].length != vocab : ids[r].length != probs[r].length) {
        throw new IllegalArgumentException("row " + r + " has " + probs[r].length + " probabilities for "
            + (ids[r] == null ? vocab : ids[r].length) + " tokens");
      }
      if (ids[r] != null) {
        for (int j = 0; j < ids[r].length; j++) {
          if (ids[r][j] < 0 || ids[r][j] >= vocab || (j > 0 && ids[r][j] <= ids[r][j - 1])) {
            throw new IllegalArgumentException("row " + r + " token ids are not ascending ids of the vocabulary");
          }
        }
      }
      for (double p : probs[r]) {
        if (!(p >= 0 && p <= 1)) {
          throw new IllegalArgumentException("row " + r + " has probability " + p);
        }
      }
    }
  }

  @Override
  public int rows() {
    return argmax.length;
  }

  @Override
  public int argmax(int row) {
    return argmax[row];
  }

  @Override
  public double[] distribution(int row) {
    if (ids[row] == null) {
      return probs[row];
    }
    double[] p = new double[vocab];
    for (int j = 0; j < ids[row].length; j++) {
      p[ids[row][j]] = probs[row][j];
    }
    return p;
  }

  @Override
  public double probability(int row, int token) {
    if (ids[row] == null) {
      return probs[row][token];
    }
    int j = Arrays.binarySearch(ids[row], token);
    return j >= 0 ? probs[row][j] : 0;
  }
}
