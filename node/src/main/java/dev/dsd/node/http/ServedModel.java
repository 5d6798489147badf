package dev.dsd.node.http;

import dev.dsd.node.generate.LocalGenerator;
import java.nio.file.Path;
import java.util.function.ToIntFunction;

/**
 * The model the HTTP API serves, as clients see it.
 *
 * @param id the name in {@code /v1/models} and the only {@code model} value requests may name
 * @param contextLength tokens the model attends to, prompt and completion together
 * @param modelDir Hugging Face directory whose {@code tokenizer_config.json} picks the chat
 *     template; null for the plain template
 * @param tokenCounter counts a text's tokens, so that a chat request without {@code max_tokens}
 *     gets the rest of the context as OpenAI does; may be null (see {@link CompletionRequests})
 */
public record ServedModel(String id, int contextLength, Path modelDir, ToIntFunction<String> tokenCounter) {
  public ServedModel {
    if (id == null || id.isBlank()) {
      throw new IllegalArgumentException("served model id is empty");
    }
    if (contextLength < 2) {
      throw new IllegalArgumentException("context length must be at least 2 tokens, got " + contextLength);
    }
  }

  /** The model of a local generator, named {@code id}. */
  public static ServedModel of(String id, Path modelDir, LocalGenerator generator) {
    return new ServedModel(id, generator.config().maxPositionEmbeddings(), modelDir,
        text -> generator.tokenizer().encode(text).length);
  }
}
