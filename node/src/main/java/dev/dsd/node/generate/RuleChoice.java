package dev.dsd.node.generate;

import dev.dsd.pipeline.tokenizer.Tokenizer;
import dev.dsd.verification.acceptance.AcceptanceRule;
import dev.dsd.verification.acceptance.AdaptiveAcceptance;
import dev.dsd.verification.acceptance.GreedyAcceptance;
import dev.dsd.verification.acceptance.Relaxation;
import dev.dsd.verification.acceptance.SpeculativeSampling;
import dev.dsd.verification.acceptance.UnsureUnimportant;
import dev.dsd.verification.importance.TokenImportance;
import dev.dsd.verification.tree.TreeRule;

/**
 * Which acceptance rule a request gets: greedy exact at temperature 0, speculative sampling above,
 * adaptive (lossy) only when asked, with the pair's calibrated max gap ({@link AdaptiveCalibration}).
 * Token importance is derived from the vocabulary once.
 */
public final class RuleChoice {
  private final Tokenizer tokenizer;
  private final int usable;
  private final double adaptiveMaxGap;
  private TokenImportance importance;

  /** With the built-in {@link AdaptiveCalibration#DEFAULT_MAX_GAP}. */
  public RuleChoice(Tokenizer tokenizer, int usableVocab) {
    this(tokenizer, usableVocab, AdaptiveCalibration.DEFAULT_MAX_GAP);
  }

  public RuleChoice(Tokenizer tokenizer, int usableVocab, double adaptiveMaxGap) {
    this(tokenizer, usableVocab, adaptiveMaxGap, null);
  }

  private RuleChoice(Tokenizer tokenizer, int usableVocab, double adaptiveMaxGap, TokenImportance importance) {
    if (!(adaptiveMaxGap >= 0 && adaptiveMaxGap < 1)) {
      throw new IllegalArgumentException("adaptive max gap must be in [0, 1), got " + adaptiveMaxGap);
    }
    this.tokenizer = tokenizer;
    this.usable = usableVocab;
    this.adaptiveMaxGap = adaptiveMaxGap;
    this.importance = importance;
  }

  /** The same choice with another adaptive max gap (a calibration sweep), sharing the importance table. */
  public RuleChoice withAdaptiveMaxGap(double maxGap) {
    return new RuleChoice(tokenizer, usable, maxGap, importance());
  }

  public double adaptiveMaxGap() {
    return adaptiveMaxGap;
  }

  public AcceptanceRule rule(GenerationRequest req) {
    return req.adaptiveVerification()
        ? new AdaptiveAcceptance(importance(), adaptiveMaxGap, req.temperature(), req.topP(), req.seed())
        : req.temperature() == 0 ? new GreedyAcceptance()
        : new SpeculativeSampling(req.temperature(), req.topP(), req.seed());
  }

  /**
   * The same choice for a token tree: greedy or multi-draft sampling, relaxed per node by the same
   * adaptive rule as chains when the request asks for it.
   */
  public TreeRule treeRule(GenerationRequest req) {
    return TreeRule.of(req.temperature(), req.seed(),
        req.adaptiveVerification() ? new UnsureUnimportant(importance(), adaptiveMaxGap) : Relaxation.NEVER);
  }

  private synchronized TokenImportance importance() {
    if (importance == null) {
      importance = TokenImportance.of(usable, id -> tokenizer.decode(new int[] {id}), TokenImportance.Weights.DEFAULT);
    }
    return importance;
  }
}
