package dev.dsd.verification.acceptance;

import dev.dsd.verification.importance.TokenImportance;
import dev.dsd.verification.sampling.Distributions;
import java.util.SplittableRandom;

/**
 * DSD's adaptive verification. LOSSY: the output is no longer exactly the target's. A draft token
 * the lossless rule would reject is still accepted when it is unimportant ({@link TokenImportance})
 * and the target gives it at least {@code minProbability}; important tokens keep the lossless rule
 * (greedy exact at temperature 0, speculative sampling otherwise). Off unless asked for.
 */
public final class AdaptiveAcceptance implements AcceptanceRule {
  private final TokenImportance importance;
  private final double minProbability;
  private final double temperature;
  private final double topP;
  private final SpeculativeSampling sampling; // null when greedy
  private final SplittableRandom random;
  private long relaxed;

  public AdaptiveAcceptance(TokenImportance importance, double minProbability, double temperature, double topP,
      long seed) {
    if (!(minProbability > 0 && minProbability <= 1)) {
      throw new IllegalArgumentException("relaxed threshold must be in (0, 1], got " + minProbability);
    }
    this.importance = importance;
    this.minProbability = minProbability;
    this.temperature = temperature;
    this.topP = topP;
    this.sampling = temperature > 0 ? new SpeculativeSampling(temperature, topP, seed) : null;
    this.random = new SplittableRandom(seed ^ 0x9E3779B97F4A7C15L);
  }

  @Override
  public TargetScores scores(float[] logits, int vocab) {
    return new LogitScores(logits, vocab, temperature, topP);
  }

  @Override
  public Verdict decide(int[] draft, double[][] q, TargetScores target) {
    for (int i = 0; i < draft.length; i++) {
      int x = draft[i];
      double px = target.probability(i, x);
      boolean lossless = sampling == null ? x == target.argmax(i)
          : random.nextDouble() < Math.min(1.0, px / (q == null ? 1.0 : q[i][x]));
      if (lossless) {
        continue;
      }
      if (importance.unimportant(x) && px >= minProbability) {
        relaxed++;
        continue;
      }
      // an important token was rejected: continue exactly as the lossless rule does from here
      int next = sampling == null ? target.argmax(i) : sampling.correction(target.distribution(i), x, q == null ? null : q[i]);
      return new Verdict(i, next);
    }
    int k = draft.length;
    if (k == target.rows()) {
      return new Verdict(k, NO_BONUS);
    }
    int next = sampling == null ? target.argmax(k) : Distributions.draw(target.distribution(k), random.nextDouble());
    return new Verdict(k, next);
  }

  /** Drafts accepted only because they were unimportant. */
  public long relaxedAcceptances() {
    return relaxed;
  }

  @Override
  public boolean lossless() {
    return false;
  }
}
