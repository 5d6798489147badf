package dev.dsd.node.generate;

/**
 * Proposes draft tokens for speculative decoding. The speculative loop calls {@link #start} once
 * with the prompt, then each round {@link #propose} and, after the target has verified,
 * {@link #accepted} so the drafter's own state (a KV cache, an n-gram index) follows the tokens the
 * target kept.
 */
public interface Drafter extends DraftSource {

  /** Starts a generation from the prompt's token ids (never empty). */
  void start(int[] prompt);

  /**
   * Up to {@code k} tokens continuing the accepted context. May return fewer (even none) when the
   * drafter has nothing worth proposing, as prompt lookup does when no n-gram matches.
   */
  int[] propose(int k);

  /**
   * The draft distributions the last {@link #propose} drew from, one vocabulary row per draft
   * token, or null for a deterministic drafter (greedy, prompt lookup): acceptance rules then treat
   * each draft as certain.
   */
  double[][] lastDistributions();

  /**
   * The target kept {@code n} of {@code drafts} and chose {@code next} after them. {@code
   * contextBefore} is the accepted length (prompt + generated) before this round.
   */
  void accepted(int contextBefore, int[] drafts, int n, int next);

  /**
   * Pipelined speculation drafts on past a round whose verdict is not in yet: the drafter is to
   * continue as if the target kept all of {@code drafts} (never empty) after {@code contextBefore}
   * accepted tokens. A later {@link #accepted} with an earlier {@code contextBefore} (and every
   * token drafted since as its drafts) rolls this back. By default: as if the target kept all but
   * the last draft and chose the last one itself.
   */
  default void assume(int contextBefore, int[] drafts) {
    if (!pipelines()) {
      throw new UnsupportedOperationException(getClass().getSimpleName() + " cannot draft past an open verdict");
    }
    accepted(contextBefore, java.util.Arrays.copyOf(drafts, drafts.length - 1), drafts.length - 1,
        drafts[drafts.length - 1]);
  }

  /** Whether this drafter can {@link #assume} and roll back (pipelined speculation needs both). */
  default boolean pipelines() {
    return true;
  }
}
