package dev.dsd.verification.acceptance;

import dev.dsd.verification.processing.TokenLogprob;
import dev.dsd.verification.sampling.Distributions;

/** {@link TargetScores} over full logits (row-major, {@code rows × vocab}); distributions made on demand. */
public final class LogitScores implements TargetScores {
  private final float[] logits;
  private final int vocab;
  private final double temperature;
  private final double topP;
  private final double[][] cache;
  // greedy rows: the softmax's maximum and denominator, so that a summary reading two probabilities
  // of a row (the last stage's, for every verified position) computes no full distribution
  private double[] rowMax;
  private double[] rowSum;

  public LogitScores(float[] logits, int vocab, double temperature, double topP) {
    if (vocab <= 0 || logits.length % vocab != 0) {
      throw new IllegalArgumentException(logits.length + " logits are not whole rows of " + vocab);
    }
    this.logits = logits;
    this.vocab = vocab;
    this.temperature = temperature;
    this.topP = topP;
    this.cache = new double[logits.length / vocab][];
  }

  @Override
  public int vocab() {
    return vocab;
  }

  @Override
  public int rows() {
    return cache.length;
  }

  @Override
  public int argmax(int row) {
    return Distributions.argmax(logits, row * vocab, vocab);
  }

  @Override
  public double[] distribution(int row) {
    if (cache[row] == null) {
      cache[row] = temperature > 0
          ? Distributions.topP(Distributions.softmax(logits, row * vocab, vocab, temperature), topP)
          : Distributions.softmax(logits, row * vocab, vocab, 1.0);
    }
    return cache[row];
  }

  /** As {@code distribution(row)[token]}, bit for bit, without making the row's distribution at temperature 0. */
  @Override
  public double probability(int row, int token) {
    if (cache[row] != null || temperature > 0) {
      return distribution(row)[token];
    }
    if (token < 0 || token >= vocab) {
      throw new IndexOutOfBoundsException("token " + token + " outside the vocabulary " + vocab);
    }
    if (rowSum == null) {
      rowMax = new double[cache.length];
      rowSum = new double[cache.length];
    }
    int off = row * vocab;
    if (rowSum[row] == 0) { // the same additions in the same order as Distributions.softmax
      double max = Double.NEGATIVE_INFINITY;
      for (int i = 0; i < vocab; i++) {
        max = Math.max(max, logits[off + i]);
      }
      double sum = 0;
      for (int i = 0; i < vocab; i++) {
        sum += Math.exp(logits[off + i] - max);
      }
      rowMax[row] = max;
      rowSum[row] = sum;
    }
    return Math.exp(logits[off + token] - rowMax[row]) / rowSum[row];
  }

  /** Log-softmax at temperature 1 of the row, computed in double with the maximum subtracted first. */
  @Override
  public TokenLogprob logprob(int row, int token, int top) {
    if (token < 0 || token >= vocab || top < 0 || top > vocab) {
      throw new IllegalArgumentException("token " + token + " / top " + top + " outside the vocabulary " + vocab);
    }
    int off = row * vocab;
    double max = logits[off + Distributions.argmax(logits, off, vocab)];
    double sum = 0;
    for (int i = 0; i < vocab; i++) {
      sum += Math.exp(logits[off + i] - max);
    }
    double lse = max + Math.log(sum);
    // insertion into a sorted top list: O(vocab * top), top is at most a few dozen
    int[] ids = new int[top];
    double[] lps = new double[top];
    int filled = 0;
    for (int i = 0; i < vocab && top > 0; i++) {
      double lp = logits[off + i] - lse;
      if (filled == top && !(lp > lps[top - 1])) {
        continue; // ties keep the lower id, already in
      }
      int j = filled < top ? filled++ : top - 1;
      while (j > 0 && lp > lps[j - 1]) {
        ids[j] = ids[j - 1];
        lps[j] = lps[j - 1];
        j--;
      }
      ids[j] = i;
      lps[j] = lp;
    }
    return new TokenLogprob(token, logits[off + token] - lse, ids, lps);
  }
}
