package dev.dsd.node.generate;

import dev.dsd.pipeline.model.WeightFormat;
import dev.dsd.verification.processing.Penalties;
import dev.dsd.verification.processing.TokenLogprob;
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
 * @param penalties repetition (Hugging Face), presence and frequency (OpenAI) penalties; see {@link Penalties}
 * @param logprobs {@link #NO_LOGPROBS}, or how many alternatives (0..{@link TokenLogprob#MAX_TOP}) to
 *     report with each generated token's log-probability
 * @param weights the weights format every stage must keep, or null for the fastest route of any one
 *     format (a route never mixes formats)
 * @param pipelined whether rounds of a pipeline generation go several at a time ({@link
 *     dev.dsd.node.generate.PipelinedLoop}), or null for the node's default ({@link #PIPELINED_DEFAULT})
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
    Penalties penalties,
    int logprobs,
    WeightFormat weights,
    Boolean pipelined) {

  /**
   * Whether pipeline generations go pipelined when a request does not say: no, as measured by {@code
   * dsd bench pipeline} (testnet/results/bench-pipelined.txt: on the bundled pair pipelined rounds
   * were not faster than synchronous ones in most settings); see the README.
   */
  public static final boolean PIPELINED_DEFAULT = false;

  /** {@link #speculation} value meaning "choose k each round". */
  public static final int AUTO = -1;
  /** {@link #speculation} value meaning "choose k each round with the learned controller". */
  public static final int LEARNED = -2;
  /** {@link #logprobs} value meaning "none". */
  public static final int NO_LOGPROBS = -1;

  /** Without penalties or logprobs. */
  public GenerationRequest(String prompt, int maxTokens, double temperature, double topP, long seed, int speculation,
      boolean adaptiveVerification, List<String> stop) {
    this(prompt, maxTokens, temperature, topP, seed, speculation, adaptiveVerification, stop, Penalties.NONE,
        NO_LOGPROBS);
  }

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
    if (penalties == null) {
      throw new GenerationException("penalties must be given (Penalties.NONE for none)");
    }
    if (logprobs < NO_LOGPROBS || logprobs > TokenLogprob.MAX_TOP) {
      throw new GenerationException("top logprobs must be 0.." + TokenLogprob.MAX_TOP + ", got " + logprobs);
    }
    if (speculation < LEARNED) {
      throw new GenerationException("speculation window must be off (0), K > 0, auto or learned, got " + speculation);
    }
  }

  public GenerationRequest(String prompt, int maxTokens, double temperature, double topP, long seed, int speculation,
      boolean adaptiveVerification, List<String> stop, Penalties penalties, int logprobs, WeightFormat weights) {
    this(prompt, maxTokens, temperature, topP, seed, speculation, adaptiveVerification, stop, penalties, logprobs,
        weights, null);
  }

  /** Whether this request's pipeline rounds go several at a time. */
  public boolean pipelinedOr(boolean nodeDefault) {
    return pipelined != null ? pipelined : nodeDefault;
  }

  /** The same request, pipelined or synchronous (null: the node's default). */
  public GenerationRequest withPipelined(Boolean p) {
    return new GenerationRequest(prompt, maxTokens, temperature, topP, seed, speculation, adaptiveVerification, stop,
        penalties, logprobs, weights, p);
  }

  /** Routed through the fastest route of any one weights format. */
  public GenerationRequest(String prompt, int maxTokens, double temperature, double topP, long seed, int speculation,
      boolean adaptiveVerification, List<String> stop, Penalties penalties, int logprobs) {
    this(prompt, maxTokens, temperature, topP, seed, speculation, adaptiveVerification, stop, penalties, logprobs, null);
  }

  /** The same request, routed only through stages of {@code format} (null: any one format). */
  public GenerationRequest withWeights(WeightFormat format) {
    return new GenerationRequest(prompt, maxTokens, temperature, topP, seed, speculation, adaptiveVerification, stop,
        penalties, logprobs, format, pipelined);
  }

  public GenerationRequest withPenalties(Penalties p) {
    return new GenerationRequest(prompt, maxTokens, temperature, topP, seed, speculation, adaptiveVerification, stop,
        p, logprobs, weights, pipelined);
  }

  public GenerationRequest withLogprobs(int top) {
    return new GenerationRequest(prompt, maxTokens, temperature, topP, seed, speculation, adaptiveVerification, stop,
        penalties, top, weights, pipelined);
  }

  public GenerationRequest withSpeculation(int k) {
    return new GenerationRequest(prompt, maxTokens, temperature, topP, seed, k, adaptiveVerification, stop, penalties,
        logprobs, weights, pipelined);
  }

  public static GenerationRequest greedy(String prompt, int maxTokens) {
    return new GenerationRequest(prompt, maxTokens, 0, 1, 0, 0, false, List.of());
  }
}
