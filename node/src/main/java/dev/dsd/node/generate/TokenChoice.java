package dev.dsd.node.generate;

import dev.dsd.pipeline.tokenizer.Tokenizer;
import dev.dsd.verification.processing.TokenLogprob;
import java.util.ArrayList;
import java.util.List;

/**
 * A generated token with its log-probability and the most likely alternatives, with their texts, as
 * the API's {@code logprobs} report them. Values are those of {@link TokenLogprob}: log-softmax of
 * the processed logits (penalties applied), temperature and top-p left out.
 */
public record TokenChoice(int token, String text, double logprob, List<Alternative> top) {
  public record Alternative(int token, String text, double logprob) {}

  public TokenChoice {
    top = List.copyOf(top);
  }

  static TokenChoice of(TokenLogprob lp, Tokenizer tokenizer) {
    List<Alternative> top = new ArrayList<>();
    for (int j = 0; j < lp.topTokens().length; j++) {
      int id = lp.topTokens()[j];
      top.add(new Alternative(id, tokenizer.decode(new int[] {id}), lp.topLogprobs()[j]));
    }
    return new TokenChoice(lp.token(), tokenizer.decode(new int[] {lp.token()}), lp.logprob(), top);
  }
}
