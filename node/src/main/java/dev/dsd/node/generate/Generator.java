package dev.dsd.node.generate;

/**
 * Produces tokens for a prompt. Local generation and the distributed pipeline session both implement
 * it, so the CLI and the HTTP API are written once and do not care where the layers run.
 */
public interface Generator extends AutoCloseable {

  /**
   * Generates a continuation of {@code request.prompt()}, handing text to {@code sink} as soon as it
   * is accepted (complete UTF-8 only), and returns the whole result when done.
   *
   * @throws GenerationException for a request the model cannot serve (empty prompt, prompt or
   *     {@code max_tokens} beyond the context) or a failure of the pipeline
   */
  GenerationResult generate(GenerationRequest request, TokenSink sink);

  @Override
  void close();
}
