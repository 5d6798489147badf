package dev.dsd.verification.sampling;

/**
 * Picks the next token from a row of logits. One instance per generation: a sampling one carries
 * its seeded random stream, so a seed reproduces the same output.
 */
public interface Sampler {

  /** Chooses a token from {@code logits[offset .. offset+vocab)}. */
  int sample(float[] logits, int offset, int vocab);

  /**
   * The distribution this sampler draws from, after temperature and top-p (a one-hot for greedy):
   * what speculative sampling compares draft and target by.
   */
  double[] distribution(float[] logits, int offset, int vocab);

  /** Greedy when {@code temperature == 0}, else temperature + top-p sampling seeded with {@code seed}. */
  static Sampler create(double temperature, double topP, long seed) {
    return temperature == 0 ? new GreedySampler() : new NucleusSampler(temperature, topP, seed);
  }
}
