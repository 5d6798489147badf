package dev.dsd.verification.tree;

import dev.dsd.verification.acceptance.TargetScores;
import dev.dsd.verification.sampling.Distributions;
import java.util.SplittableRandom;

/** Scores plus one draw per row from their distribution there (see {@link FollowSamples}). */
public final class SampledScores implements TargetScores {
  private final TargetScores base;
  private final int[] samples;

  public SampledScores(TargetScores base, int[] samples) {
    if (samples.length != base.rows()) {
      throw new IllegalArgumentException(samples.length + " draws for " + base.rows() + " rows");
    }
    for (int t : samples) {
      if (t < 0 || t >= base.vocab()) {
        throw new IllegalArgumentException("draw " + t + " is outside the vocabulary " + base.vocab());
      }
    }
    this.base = base;
    this.samples = samples.clone();
  }

  /** Draws each row of {@code base} in order from a generator seeded with {@code seed}, as a last stage does. */
  public static SampledScores draw(TargetScores base, long seed) {
    SplittableRandom random = new SplittableRandom(seed);
    int[] s = new int[base.rows()];
    for (int row = 0; row < s.length; row++) {
      s[row] = Distributions.draw(base.distribution(row), random.nextDouble());
    }
    return new SampledScores(base, s);
  }

  @Override
  public int sampled(int row) {
    return samples[row];
  }

  @Override
  public int vocab() {
    return base.vocab();
  }

  @Override
  public int rows() {
    return base.rows();
  }

  @Override
  public int argmax(int row) {
    return base.argmax(row);
  }

  @Override
  public double[] distribution(int row) {
    return base.distribution(row);
  }

  @Override
  public double probability(int row, int token) {
    return base.probability(row, token);
  }
}
