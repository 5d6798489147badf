package dev.dsd.verification.acceptance;

import dev.dsd.verification.processing.TokenLogprob;

/**
 * What the target said at the k+1 verified positions, as acceptance rules read it. Row i predicts
 * the token after draft i (row 0: after the last accepted token). Locally this is a view of the
 * full logits ({@link LogitScores}); across a pipeline the last stage sends only a summary
 * ({@link SparseScores}) that yields the same verdicts.
 */
public interface TargetScores {
  int vocab();

  int rows();

  /** The target's most likely token at the row (ties: the lowest id). */
  int argmax(int row);

  /**
   * The distribution the session samples from at the row: softmax(logits / temperature) cut to
   * top-p. For greedy sessions (temperature 0) it is softmax at temperature 1 without a cut, which
   * only adaptive verification reads. Dense over the vocabulary; callers must not modify it.
   */
  double[] distribution(int row);

  /** {@code distribution(row)[token]}, cheaper where the scores are a summary. */
  default double probability(int row, int token) {
    return distribution(row)[token];
  }

  /**
   * {@code token}'s log-probability at the row and the {@code top} most likely tokens there (see
   * {@link TokenLogprob}). Only scores that hold the processed logits can answer; a pipeline
   * session that needs logprobs asks its last stage for them.
   *
   * @throws UnsupportedOperationException where the scores are a summary without them
   */
  default TokenLogprob logprob(int row, int token, int top) {
    throw new UnsupportedOperationException("these scores carry no logprobs");
  }

  /**
   * A token drawn from {@link #distribution} at the row, where the scores carry draws (a pipeline
   * round that asked its last stage to sample, or {@link dev.dsd.verification.tree.SampledScores}).
   *
   * @throws UnsupportedOperationException where they carry none
   */
  default int sampled(int row) {
    throw new UnsupportedOperationException("these scores carry no draws");
  }
}
