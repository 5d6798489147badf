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
   * Summarizes {@code full} for rules reading {@code drafts}, draft {@code r} tested at row {@code r}
   * (a chain). Sampling rows are sent whole (sparse when at most half the vocabulary has mass, else
   * dense); greedy rows carry the draft token and the argmax.
   */
  public static SparseScores summarize(TargetScores full, int[] drafts, boolean sampling) {
    int[] rows = new int[drafts.length];
    for (int i = 0; i < rows.length; i++) {
      rows[i] = i;
    }
    return summarize(full, drafts, rows, sampling);
  }

  /**
   * As {@link #summarize(TargetScores, int[], boolean)}, with draft {@code i} tested at row {@code
   * draftRows[i]}: a token tree's node is tested at its parent's row, so a greedy row carries the
   * argmax and every child's token there (adaptive verification reads how far each trails). A row
   * outside the scores is a caller's mistake.
   */
  public static SparseScores summarize(TargetScores full, int[] drafts, int[] draftRows, boolean sampling) {
    if (draftRows.length != drafts.length) {
      throw new IllegalArgumentException(draftRows.length + " rows for " + drafts.length + " drafts");
    }
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
      }
    }
    if (!sampling) {
      // per row its tested tokens and the argmax: adaptive verification reads how far one trails the other
      java.util.TreeSet<Integer>[] tested = new java.util.TreeSet[rows];
      for (int i = 0; i < drafts.length; i++) {
        int r = draftRows[i];
        if (r < 0 || r >= rows) {
          throw new IllegalArgumentException("draft " + i + " is tested at row " + r + " of " + rows);
        }
        if (tested[r] == null) {
          tested[r] = new java.util.TreeSet<>(java.util.List.of(argmax[r]));
        }
        tested[r].add(drafts[i]);
      }
      for (int r = 0; r < rows; r++) {
        ids[r] = tested[r] == null ? new int[0] : tested[r].stream().mapToInt(Integer::intValue).toArray();
        probs[r] = new double[ids[r].length];
        for (int j = 0; j < ids[r].length; j++) {
          probs[r][j] = full.probability(r, ids[r][j]);
        }
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
