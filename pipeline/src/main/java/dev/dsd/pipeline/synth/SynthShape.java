package dev.dsd.pipeline.synth;

import java.util.Locale;

/**
 * Real Llama-family shapes, as their published {@code config.json} files give them, for checkpoints
 * of random weights that benchmarks and tests can use without a model hub.
 *
 * @param id what users type ({@code tinyllama-1.1b})
 * @param architecture Hugging Face architecture name
 * @param hidden width of the residual stream
 * @param intermediate width of the SwiGLU MLP
 * @param layers transformer blocks
 * @param heads query heads
 * @param kvHeads key/value heads
 * @param vocab vocabulary size (rows of embedding and head)
 * @param maxPositions context length
 * @param ropeTheta rotary base
 * @param rmsEps RMSNorm epsilon
 * @param tied whether the LM head is the embedding
 * @param ropeScalingJson the {@code rope_scaling} object as JSON, or {@code null}
 * @param shardBytes the checkpoint is split into files of at most this many bytes (0: one file)
 */
public record SynthShape(String id, String architecture, int hidden, int intermediate, int layers, int heads,
    int kvHeads, int vocab, int maxPositions, double ropeTheta, double rmsEps, boolean tied, String ropeScalingJson,
    long shardBytes) {

  public static final SynthShape TINYLLAMA_1_1B = new SynthShape("tinyllama-1.1b", "LlamaForCausalLM", 2048, 5632, 22,
      32, 4, 32000, 2048, 10000.0, 1e-5, false, null, 0);
  public static final SynthShape LLAMA_3_2_1B = new SynthShape("llama-3.2-1b", "LlamaForCausalLM", 2048, 8192, 16, 32,
      8, 128256, 131072, 500000.0, 1e-5, true,
      "{\"factor\":32.0,\"high_freq_factor\":4.0,\"low_freq_factor\":1.0,"
          + "\"original_max_position_embeddings\":8192,\"rope_type\":\"llama3\"}", 0);
  public static final SynthShape QWEN2_5_1_5B = new SynthShape("qwen2.5-1.5b", "Qwen2ForCausalLM", 1536, 8960, 28, 12,
      2, 151936, 32768, 1000000.0, 1e-6, true, null, 0);
  /** Hugging Face ships Llama-2-7B as two files with an index; 5 GB files give three here. */
  public static final SynthShape LLAMA_2_7B = new SynthShape("llama-2-7b", "LlamaForCausalLM", 4096, 11008, 32, 32,
      32, 32000, 4096, 10000.0, 1e-5, false, null, 5_000_000_000L);

  public static final SynthShape[] ALL = {TINYLLAMA_1_1B, LLAMA_3_2_1B, QWEN2_5_1_5B, LLAMA_2_7B};

  public static SynthShape parse(String text) {
    for (SynthShape s : ALL) {
      if (s.id.equals(text.trim().toLowerCase(Locale.ROOT))) {
        return s;
      }
    }
    throw new IllegalArgumentException("unknown shape '" + text
        + "' (expected tinyllama-1.1b, llama-3.2-1b, qwen2.5-1.5b or llama-2-7b)");
  }

  /** The same shape with fewer layers (tests), or with files split at {@code bytes}. */
  public SynthShape withLayers(int n) {
    return new SynthShape(id, architecture, hidden, intermediate, n, heads, kvHeads, vocab, maxPositions, ropeTheta,
        rmsEps, tied, ropeScalingJson, shardBytes);
  }

  /** Tests only: a smaller vocabulary keeps the embedding small; every other dimension is the shape's. */
  public SynthShape withVocab(int v) {
    return new SynthShape(id, architecture, hidden, intermediate, layers, heads, kvHeads, v, maxPositions, ropeTheta,
        rmsEps, tied, ropeScalingJson, shardBytes);
  }

  public SynthShape withShardBytes(long bytes) {
    return new SynthShape(id, architecture, hidden, intermediate, layers, heads, kvHeads, vocab, maxPositions, ropeTheta,
        rmsEps, tied, ropeScalingJson, bytes);
  }

  public boolean qkvBias() {
    return architecture.equals("Qwen2ForCausalLM");
  }

  public int headDim() {
    return hidden / heads;
  }
}
