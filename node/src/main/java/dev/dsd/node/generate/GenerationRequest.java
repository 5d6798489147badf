package dev.dsd.node.generate;

import dev.dsd.pipeline.model.WeightFormat;
import java.util.List;

/**
 * One prompt to complete.
 *
 * @param prompt the text to continue; must not be empty
 * @param maxTokens new tokens to generate at most (prompt + maxTokens must fit the context)
 * @param temperature 0 for greedy decoding
 * @param topP nucleus mass in (0, 1]
 * @param seed seed of the sampler, for reproducible sampling
 * @param speculation {@code 0} for none, {@code K > 0} for a fixed window, {@link #AUTO} for adaptive
 * @param adaptiveVerification relax acceptance on unimportant tokens (lossy; off by default)
 * @param stop strings that end generation when they appear in the output (not included)
 * @param weights the weights format every stage must keep, or null for the fastest route of any one
 *     format (a route never mixes formats)
 */
public record GenerationRequest(
    String prompt,
    int maxTokens,
    double temperature,
    double topP,
    long seed,
    int speculation,
    boolean adaptiveVerification,
    List<String> stop,
    WeightFormat weights) {

  /** {@link #speculation} value meaning "choose k each round". */
  public static final int AUTO = -1;

  public GenerationRequest {
    stop = List.copyOf(stop);
    if (maxTokens < 1) {
      throw new GenerationException("max_tokens must be at least 1, got " + maxTokens);
    }
    if (!(temperature >= 0) || Double.isInfinite(temperature)) {
      throw new GenerationException("temperature must be a finite number >= 0, got " + temperature);
    }
    if (!(topP > 0 && topP <= 1)) {
      throw new GenerationException("top_p must be in (0, 1], got " + topP);
    }
    if (speculation < AUTO) {
      throw new GenerationException("speculation window must be off (0), K > 0 or auto, got " + speculation);
    }
  }

  /** A request that takes the fastest route of any one weights format. */
  public GenerationRequest(String prompt, int maxTokens, double temperature, double topP, long seed, int speculation,
      boolean adaptiveVerification, List<String> stop) {
    this(prompt, maxTokens, temperature, topP, seed, speculation, adaptiveVerification, stop, null);
  }

  /** The same request, routed only through stages of {@code format} (null: any one format). */
  public GenerationRequest withWeights(WeightFormat format) {
    return new GenerationRequest(prompt, maxTokens, temperature, topP, seed, speculation, adaptiveVerification, stop,
        format);
  }

  public static GenerationRequest greedy(String prompt, int maxTokens) {
    return new GenerationRequest(prompt, maxTokens, 0, 1, 0, 0, false, List.of());
  }
}
