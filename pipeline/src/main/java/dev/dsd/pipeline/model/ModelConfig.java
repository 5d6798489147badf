package dev.dsd.pipeline.model;

import java.util.List;

/**
 * The architecture of a Llama-family checkpoint, as read from a Hugging Face {@code config.json}.
 *
 * <p>One record serves Llama, Mistral and Qwen2: they differ only in whether q/k/v projections carry
 * biases ({@link #attentionBias}) and in naming. Immutable; validated by whoever builds it.
 *
 * @param architecture e.g. {@code LlamaForCausalLM}
 * @param hiddenSize width of the residual stream
 * @param intermediateSize width of the SwiGLU MLP
 * @param numLayers number of transformer blocks
 * @param numHeads attention (query) heads
 * @param numKvHeads key/value heads; fewer than {@code numHeads} means grouped-query attention
 * @param headDim per-head width ({@code hidden_size / num_attention_heads} unless given)
 * @param rmsNormEps epsilon inside RMSNorm
 * @param ropeTheta base of the rotary frequencies
 * @param ropeScaling rotary scaling, or {@link RopeScaling#NONE}
 * @param vocabSize rows of the embedding and the LM head
 * @param tieWordEmbeddings whether the LM head reuses {@code model.embed_tokens.weight}
 * @param maxPositionEmbeddings context length in tokens
 * @param attentionBias whether q/k/v projections have biases (Qwen2)
 * @param bosTokenId beginning-of-sequence token id, or -1
 * @param eosTokenIds end-of-sequence token ids (may be empty)
 */
public record ModelConfig(
    String architecture,
    int hiddenSize,
    int intermediateSize,
    int numLayers,
    int numHeads,
    int numKvHeads,
    int headDim,
    double rmsNormEps,
    double ropeTheta,
    RopeScaling ropeScaling,
    int vocabSize,
    boolean tieWordEmbeddings,
    int maxPositionEmbeddings,
    boolean attentionBias,
    int bosTokenId,
    List<Integer> eosTokenIds) {

  public ModelConfig {
    eosTokenIds = List.copyOf(eosTokenIds);
  }

  /** Width of one token's keys (or values) in one layer. */
  public int kvDim() {
    return numKvHeads * headDim;
  }

  /** Width of one token's queries in one layer. */
  public int qDim() {
    return numHeads * headDim;
  }

  /**
   * Rotary-position scaling from {@code rope_scaling}. {@code type} is one of {@code none},
   * {@code linear}, {@code dynamic} (NTK; applied as a static factor at load time) or
   * {@code llama3}; other fields are meaningful only for the types that use them.
   */
  public record RopeScaling(
      String type,
      double factor,
      double lowFreqFactor,
      double highFreqFactor,
      int originalMaxPositionEmbeddings) {
    public static final RopeScaling NONE = new RopeScaling("none", 1.0, 1.0, 1.0, 0);
  }
}
