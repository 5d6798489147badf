package dev.dsd.verification.sampling;

/** Argmax; ties go to the lowest id so every implementation agrees. */
public final class GreedySampler implements Sampler {
  @Override
  public int sample(float[] logits, int offset, int vocab) {
    return Distributions.argmax(logits, offset, vocab);
  }

  @Override
  public double[] distribution(float[] logits, int offset, int vocab) {
    double[] p = new double[vocab];
    p[sample(logits, offset, vocab)] = 1;
    return p;
  }
}
