package dev.dsd.verification.acceptance;

import dev.dsd.verification.sampling.Distributions;
import java.util.SplittableRandom;

/**
 * Speculative sampling (Leviathan et al. 2023; Chen et al. 2023): draft token x drawn from q is
 * kept with probability min(1, p(x)/q(x)); at the first rejection the next token is drawn from
 * norm(max(0, p - q)); if all k are kept, a bonus token is drawn from p at position k+1. With p and
 * q both after the same temperature and top-p, each output token is distributed exactly as when
 * sampling the target alone. A deterministic drafter (q = null) is treated as q = one-hot.
 */
public final class SpeculativeSampling implements AcceptanceRule {
  private final double temperature;
  private final double topP;
  private final SplittableRandom random;

  public SpeculativeSampling(double temperature, double topP, long seed) {
    if (!(temperature > 0)) {
      throw new IllegalArgumentException("speculative sampling needs temperature > 0; use GreedyAcceptance for 0");
    }
    this.temperature = temperature;
    this.topP = topP;
    this.random = new SplittableRandom(seed);
  }

  /** The target distribution at one position, as the target alone would sample it. */
  public double[] target(float[] logits, int row, int vocab) {
    return Distributions.topP(Distributions.softmax(logits, row * vocab, vocab, temperature), topP);
  }

  @Override
  public Verdict decide(int[] draft, double[][] q, float[] logits, int vocab) {
    for (int i = 0; i < draft.length; i++) {
      double[] p = target(logits, i, vocab);
      int x = draft[i];
      double qx = q == null ? 1.0 : q[i][x];
      if (qx <= 0) {
        throw new IllegalArgumentException("draft token " + x + " has zero draft probability");
      }
      if (random.nextDouble() < Math.min(1.0, p[x] / qx)) {
        continue;
      }
      float[] row = java.util.Arrays.copyOfRange(logits, i * vocab, (i + 1) * vocab);
      return new Verdict(i, decideRejected(new int[] {x}, q == null ? null : new double[][] {q[i]}, row, vocab).next());
    }
    return new Verdict(draft.length, Distributions.draw(target(logits, draft.length, vocab), random.nextDouble()));
  }

  /** The correction token after draft {@code draft[0]} was rejected (row 0 is its position). */
  Verdict decideRejected(int[] draft, double[][] q, float[] logits, int vocab) {
    double[] p = target(logits, 0, vocab);
    int x = draft[0];
    double[] residual = new double[vocab];
    double mass = 0;
    for (int v = 0; v < vocab; v++) {
      double qv = q == null ? (v == x ? 1.0 : 0.0) : q[0][v];
      residual[v] = Math.max(0, p[v] - qv);
      mass += residual[v];
    }
    if (mass <= 0) {
      return new Verdict(0, Distributions.draw(p, random.nextDouble()));
    }
    for (int v = 0; v < vocab; v++) {
      residual[v] /= mass;
    }
    return new Verdict(0, Distributions.draw(residual, random.nextDouble()));
  }

  @Override
  public boolean lossless() {
    return true;
  }
}
