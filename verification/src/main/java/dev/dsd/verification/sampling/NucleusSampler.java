package dev.dsd.verification.sampling;

import java.util.SplittableRandom;

/** Temperature then top-p (nucleus) filtering, sampled from a seeded stream. */
public final class NucleusSampler implements Sampler {
  private final double temperature;
  private final double topP;
  private final SplittableRandom random;

  public NucleusSampler(double temperature, double topP, long seed) {
    if (!(temperature > 0) || Double.isInfinite(temperature)) {
      throw new IllegalArgumentException("temperature must be > 0 and finite, got " + temperature);
    }
    if (!(topP > 0 && topP <= 1)) {
      throw new IllegalArgumentException("top_p must be in (0, 1], got " + topP);
    }
    this.temperature = temperature;
    this.topP = topP;
    this.random = new SplittableRandom(seed);
  }

  @Override
  public int sample(float[] logits, int offset, int vocab) {
    return Distributions.draw(distribution(logits, offset, vocab), random.nextDouble());
  }

  @Override
  public double[] distribution(float[] logits, int offset, int vocab) {
    return Distributions.topP(Distributions.softmax(logits, offset, vocab, temperature), topP);
  }

  /** The next uniform draw in [0, 1), for rules that need randomness from the same seeded stream. */
  public double nextUniform() {
    return random.nextDouble();
  }
}
