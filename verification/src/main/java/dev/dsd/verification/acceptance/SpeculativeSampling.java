package dev.dsd.verification.acceptance;

import dev.dsd.verification.sampling.Distributions;
import java.util.SplittableRandom;

/**
 * Speculative sampling (Leviathan et al. 2023; Chen et al. 2023): draft token x drawn from q is
 * kept with probability min(1, p(x)/q(x)); at the first rejection the next token is drawn from
 * norm(max(0, p - q)); if all k are kept, a bonus token is drawn from p at position k+1. With p and
 * q both after the same temperature and top-p, each output token is distributed exactly as when
 * sampling the target alone. A deterministic drafter (q = null) is treated as q = one-hot.
 *
 * <p>{@link AdaptiveAcceptance} reuses this rule with a {@link Relaxation}: a draft the test above
 * rejects is kept anyway where the relaxation allows it. The random stream is consumed exactly as
 * without it (one number per tested draft, one per correction or bonus token), so where nothing is
 * relaxed the output is token for token the lossless one for the same seed.
 */
public final class SpeculativeSampling implements AcceptanceRule {
  private final double temperature;
  private final double topP;
  private final SplittableRandom random;
  private final Relaxation relaxation;

  public SpeculativeSampling(double temperature, double topP, long seed) {
    this(temperature, topP, seed, Relaxation.NEVER);
  }

  /** Lossy where {@code relaxation} keeps a rejected draft (adaptive verification); lossless with {@link Relaxation#NEVER}. */
  public SpeculativeSampling(double temperature, double topP, long seed, Relaxation relaxation) {
    if (!(temperature > 0)) {
      throw new IllegalArgumentException("speculative sampling needs temperature > 0; use GreedyAcceptance for 0");
    }
    this.temperature = temperature;
    this.topP = topP;
    this.random = new SplittableRandom(seed);
    this.relaxation = relaxation;
  }

  @Override
  public TargetScores scores(float[] logits, int vocab) {
    return new LogitScores(logits, vocab, temperature, topP);
  }

  @Override
  public Verdict decide(int[] draft, double[][] q, TargetScores target) {
    for (int i = 0; i < draft.length; i++) {
      int x = draft[i];
      double qx = q == null ? 1.0 : q[i][x];
      if (qx <= 0) {
        throw new IllegalArgumentException("draft token " + x + " has zero draft probability");
      }
      if (random.nextDouble() < Math.min(1.0, target.probability(i, x) / qx) || relaxation.keep(i, x, target)) {
        continue;
      }
      return new Verdict(i, correction(target.distribution(i), x, q == null ? null : q[i]));
    }
    if (draft.length == target.rows()) {
      return new Verdict(draft.length, NO_BONUS);
    }
    return new Verdict(draft.length, Distributions.draw(target.distribution(draft.length), random.nextDouble()));
  }

  /** The token after draft {@code x} was rejected: drawn from norm(max(0, p - q)), q one-hot when null. */
  int correction(double[] p, int x, double[] q) {
    double[] residual = new double[p.length];
    double mass = 0;
    for (int v = 0; v < p.length; v++) {
      double qv = q == null ? (v == x ? 1.0 : 0.0) : q[v];
      residual[v] = Math.max(0, p[v] - qv);
      mass += residual[v];
    }
    if (mass <= 0) {
      return Distributions.draw(p, random.nextDouble());
    }
    for (int v = 0; v < p.length; v++) {
      residual[v] /= mass;
    }
    return Distributions.draw(residual, random.nextDouble());
  }

  @Override
  public boolean lossless() {
    return relaxation == Relaxation.NEVER;
  }
}
