package dev.dsd.verification.acceptance;

/**
 * Whether a draft token the lossless test rejected at a row is kept anyway (lossy). Chains
 * ({@link SpeculativeSampling}, {@link AdaptiveAcceptance}) and trees ({@code GreedyTree},
 * {@code MultiDraftSampling}) ask it the same question at each tested token, so adaptive
 * verification means one thing whatever shape the drafts take.
 */
public interface Relaxation {
  /** @param row the target's scores row the token is tested at; {@code token} the draft token there */
  boolean keep(int row, int token, TargetScores target);

  /** Lossless: nothing is kept that the test rejected. */
  Relaxation NEVER = (row, token, target) -> false;
}
