package dev.dsd.node.generate;

import java.util.List;

/** Receives generated text while it is produced. Returning {@code false} stops generation early. */
@FunctionalInterface
public interface TokenSink {
  boolean accept(String text, int[] tokenIds);

  /**
   * The same with the logprobs of the tokens generated since the last call (empty unless the request
   * asked for them). Text is held back while a stop string may be forming, so the tokens a call's
   * logprobs describe are those produced up to it, not exactly those whose text it carries.
   */
  default boolean accept(String text, int[] tokenIds, List<TokenChoice> logprobs) {
    return accept(text, tokenIds);
  }

  TokenSink NONE = (text, ids) -> true;
}
