package dev.dsd.verification.processing;

/**
 * A generated token's log-probability and the most likely alternatives at its position, all
 * log-softmax of the processed logits (after the vocabulary mask and the penalties, before
 * temperature and top-p): the model's own distribution as the request shaped it, which is what
 * vLLM calls processed logprobs. Temperature is left out so that a value means the same at any
 * sampling setting, as OpenAI's logprobs do.
 *
 * @param topTokens the {@code n} most likely tokens, most likely first (ties: lower id first)
 * @param topLogprobs their log-probabilities
 */
public record TokenLogprob(int token, double logprob, int[] topTokens, double[] topLogprobs) {
  /** OpenAI's maximum {@code top_logprobs}. */
  public static final int MAX_TOP = 20;

  public TokenLogprob {
    if (topTokens.length != topLogprobs.length) {
      throw new IllegalArgumentException(topTokens.length + " top tokens but " + topLogprobs.length + " logprobs");
    }
  }
}
