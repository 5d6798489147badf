package dev.dsd.node.generate;

import java.util.List;

/**
 * What a generation produced and how it went.
 *
 * @param text the generated text (prompt excluded)
 * @param tokenIds the generated token ids
 * @param promptTokens tokens in the prompt
 * @param finishReason {@code length}, {@code stop} (end-of-sequence or a stop string) or {@code cancelled}
 * @param seconds wall time of the generation, prompt processing and (for a pipeline) session setup included
 * @param rounds target passes (one per token without speculation)
 * @param draftedTokens draft tokens proposed
 * @param acceptedTokens draft tokens the target accepted
 * @param route the peers (or {@code local}) that ran each stage, in order
 * @param bytesSent bytes sent between peers for this generation (0 when local)
 * @param logprobs per generated token, when the request asked for them; else empty
 * @param firstTokenSeconds from the same start as {@code seconds} to the first generated token (0 when none)
 */
public record GenerationResult(
    String text,
    int[] tokenIds,
    int promptTokens,
    String finishReason,
    double seconds,
    int rounds,
    long draftedTokens,
    long acceptedTokens,
    List<String> route,
    long bytesSent,
    List<TokenChoice> logprobs,
    double firstTokenSeconds) {

  public GenerationResult {
    route = List.copyOf(route);
    logprobs = List.copyOf(logprobs);
  }

  /** Without logprobs. */
  public GenerationResult(String text, int[] tokenIds, int promptTokens, String finishReason, double seconds, int rounds,
      long draftedTokens, long acceptedTokens, List<String> route, long bytesSent) {
    this(text, tokenIds, promptTokens, finishReason, seconds, rounds, draftedTokens, acceptedTokens, route, bytesSent,
        List.of(), 0);
  }

  public double tokensPerSecond() {
    return seconds > 0 ? tokenIds.length / seconds : 0;
  }

  /** Accepted / drafted; 0 when nothing was drafted. */
  public double acceptanceRate() {
    return draftedTokens == 0 ? 0 : (double) acceptedTokens / draftedTokens;
  }
}
