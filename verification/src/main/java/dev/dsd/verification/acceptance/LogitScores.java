package dev.dsd.verification.acceptance;

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
}
