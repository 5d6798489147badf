package dev.dsd.node.generate;

import dev.dsd.pipeline.model.ModelConfig;
import dev.dsd.pipeline.tokenizer.Tokenizer;

/** The checks every generator makes before it allocates anything, with messages fit for users. */
public final class PromptCheck {
  private PromptCheck() {}

  /** Encodes the prompt and checks that it and {@code max_tokens} fit the model's context. */
  public static int[] encode(Tokenizer tok, GenerationRequest req, ModelConfig c) {
    if (req.prompt().isEmpty()) {
      throw new GenerationException("the prompt is empty");
    }
    int[] ids = tok.encode(req.prompt());
    int ctx = c.maxPositionEmbeddings();
    if (ids.length >= ctx) {
      throw new GenerationException("the prompt is " + ids.length + " tokens; the model's context holds " + ctx);
    }
    if (ids.length + req.maxTokens() > ctx) {
      throw new GenerationException("prompt (" + ids.length + " tokens) + max_tokens (" + req.maxTokens()
          + ") exceeds the model's context of " + ctx + " tokens; ask for at most " + (ctx - ids.length));
    }
    return ids;
  }
}
