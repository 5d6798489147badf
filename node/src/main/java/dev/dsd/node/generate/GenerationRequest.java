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
 * @param tree token-tree speculation: {@code 0} off (a chain of drafts), {@code N > 0} draft nodes per
 *     round, {@link #AUTO} for a budget chosen each round; used where the target and drafter can run
 *     trees and the request needs no per-token history (no penalties, logprobs or adaptive
 *     verification), else the chain is used. Speculation off ({@code speculation == 0}) turns it off.
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
    Boolean pipelined,
    int tree) {

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
    if (tree < AUTO || tree > MAX_TREE) {
      throw new GenerationException("tree must be off (0), N in 1.." + MAX_TREE + " draft nodes or auto, got " + tree);
    }
  }

  /** Draft nodes a request may ask per round. */
  public static final int MAX_TREE = 256;

  /**
   * {@link #tree} where a user does not say ({@code dsd generate --tree}, the API's {@code dsd_tree}):
   * what {@code dsd bench pipeline} measured faster (README, testnet/results/bench-pipeline-tree.txt, run of commit 81dcd02):
   * on the 4-stage 20 ms testnet of a shared 2-core machine the chain's {@code --spec auto} beat trees
   * in tok/s, greedy and sampled, so trees are off unless asked for. Requests built in code without
   * it run chains too.
   */
  public static final int DEFAULT_TREE = 0;

  /** Without token trees (a chain of drafts), pipelined as the node's default says. */
  public GenerationRequest(String prompt, int maxTokens, double temperature, double topP, long seed, int speculation,
      boolean adaptiveVerification, List<String> stop, Penalties penalties, int logprobs, WeightFormat weights) {
    this(prompt, maxTokens, temperature, topP, seed, speculation, adaptiveVerification, stop, penalties, logprobs,
        weights, null, 0);
  }

  /** The same request with token-tree speculation {@code tree} (0 off, N nodes, or {@link #AUTO}). */
  public GenerationRequest withTree(int tree) {
    return new GenerationRequest(prompt, maxTokens, temperature, topP, seed, speculation, adaptiveVerification, stop,
        penalties, logprobs, weights, pipelined, tree);
  }

  /** Whether this request's pipeline rounds go several at a time. */
  public boolean pipelinedOr(boolean nodeDefault) {
    return pipelined != null ? pipelined : nodeDefault;
  }

  /** The same request, pipelined or synchronous (null: the node's default). */
  public GenerationRequest withPipelined(Boolean p) {
    return new GenerationRequest(prompt, maxTokens, temperature, topP, seed, speculation, adaptiveVerification, stop,
        penalties, logprobs, weights, p, tree);
  }

  /** Routed through the fastest route of any one weights format. */
  public GenerationRequest(String prompt, int maxTokens, double temperature, double topP, long seed, int speculation,
      boolean adaptiveVerification, List<String> stop, Penalties penalties, int logprobs) {
    this(prompt, maxTokens, temperature, topP, seed, speculation, adaptiveVerification, stop, penalties, logprobs, null);
  }

  /** The same request, routed only through stages of {@code format} (null: any one format). */
  public GenerationRequest withWeights(WeightFormat format) {
    return new GenerationRequest(prompt, maxTokens, temperature, topP, seed, speculation, adaptiveVerification, stop,
        penalties, logprobs, format, pipelined, tree);
  }

  public GenerationRequest withPenalties(Penalties p) {
    return new GenerationRequest(prompt, maxTokens, temperature, topP, seed, speculation, adaptiveVerification, stop,
        p, logprobs, weights, pipelined, tree);
  }

  public GenerationRequest withLogprobs(int top) {
    return new GenerationRequest(prompt, maxTokens, temperature, topP, seed, speculation, adaptiveVerification, stop,
        penalties, top, weights, pipelined, tree);
  }

  public GenerationRequest withSpeculation(int k) {
    return new GenerationRequest(prompt, maxTokens, temperature, topP, seed, k, adaptiveVerification, stop, penalties,
        logprobs, weights, pipelined, tree);
  }

  public static GenerationRequest greedy(String prompt, int maxTokens) {
    return new GenerationRequest(prompt, maxTokens, 0, 1, 0, 0, false, List.of());
  }
}
