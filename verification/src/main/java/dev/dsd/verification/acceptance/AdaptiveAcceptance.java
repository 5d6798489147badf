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
    this.sampling = temperature > 0 ? new SpeculativeSampling(temperature, topP, seed) : null;
    this.random = new SplittableRandom(seed ^ 0x9E3779B97F4A7C15L);
  }

  @Override
  public Verdict decide(int[] draft, double[][] q, float[] logits, int vocab) {
    for (int i = 0; i < draft.length; i++) {
      int x = draft[i];
      double[] p = sampling != null ? sampling.target(logits, i, vocab) : Distributions.softmax(logits, i * vocab, vocab, 1.0);
      boolean lossless = sampling == null ? x == Distributions.argmax(logits, i * vocab, vocab)
          : random.nextDouble() < Math.min(1.0, p[x] / (q == null ? 1.0 : q[i][x]));
      if (lossless) {
        continue;
      }
      if (importance.unimportant(x) && p[x] >= minProbability) {
        relaxed++;
        continue;
      }
      if (sampling == null) {
        return new Verdict(i, Distributions.argmax(logits, i * vocab, vocab));
      }
      // the important token was rejected: continue exactly as speculative sampling does from here
      int[] rest = {x};
      double[][] restQ = q == null ? null : new double[][] {q[i]};
      float[] rows = java.util.Arrays.copyOfRange(logits, i * vocab, (i + 2) * vocab);
      Verdict v = sampling.decideRejected(rest, restQ, rows, vocab);
      return new Verdict(i, v.next());
    }
    int k = draft.length;
    int next = sampling == null ? Distributions.argmax(logits, k * vocab, vocab)
        : Distributions.draw(sampling.target(logits, k, vocab), random.nextDouble());
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
