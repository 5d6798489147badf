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
