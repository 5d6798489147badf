package dev.dsd.node.generate;

import dev.dsd.pipeline.tokenizer.Tokenizer;
import dev.dsd.verification.acceptance.AcceptanceRule;
import dev.dsd.verification.acceptance.AdaptiveAcceptance;
import dev.dsd.verification.acceptance.GreedyAcceptance;
import dev.dsd.verification.acceptance.SpeculativeSampling;
import dev.dsd.verification.importance.TokenImportance;

/**
 * Which acceptance rule a request gets: greedy exact at temperature 0, speculative sampling above,
 * adaptive (lossy) only when asked. Token importance is derived from the vocabulary once.
 */
public final class RuleChoice {
  /** Adaptive verification keeps an unimportant draft token when the target gives it at least this. */
  public static final double ADAPTIVE_MIN_PROBABILITY = 0.1;

  private final Tokenizer tokenizer;
  private final int usable;
  private TokenImportance importance;

  public RuleChoice(Tokenizer tokenizer, int usableVocab) {
    this.tokenizer = tokenizer;
    this.usable = usableVocab;
  }

  public AcceptanceRule rule(GenerationRequest req) {
    return req.adaptiveVerification()
        ? new AdaptiveAcceptance(importance(), ADAPTIVE_MIN_PROBABILITY, req.temperature(), req.topP(), req.seed())
        : req.temperature() == 0 ? new GreedyAcceptance()
        : new SpeculativeSampling(req.temperature(), req.topP(), req.seed());
  }

  private synchronized TokenImportance importance() {
    if (importance == null) {
      importance = TokenImportance.of(usable, id -> tokenizer.decode(new int[] {id}), TokenImportance.Weights.DEFAULT);
    }
    return importance;
  }
}
