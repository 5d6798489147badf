package dev.dsd.pipeline.checkpoint;

import dev.dsd.pipeline.model.ModelConfig;
import java.util.LinkedHashMap;
import java.util.Map;

/** Hugging Face tensor names and expected shapes for a shard's layers {@code [from, to)}. */
public final class TensorNames {
  private TensorNames() {}

  public static final String EMBED = "model.embed_tokens.weight";
  public static final String NORM = "model.norm.weight";
  public static final String LM_HEAD = "lm_head.weight";

  public static String layer(int i, String suffix) {
    return "model.layers." + i + "." + suffix;
  }

  /** Every tensor the shard reads, with its shape. The LM head is the embedding when tied. */
  public static Map<String, long[]> forShard(ModelConfig c, int from, int to) {
    Map<String, long[]> m = new LinkedHashMap<>();
    long h = c.hiddenSize();
    long q = c.qDim();
    long kv = c.kvDim();
    long inter = c.intermediateSize();
    if (from == 0) {
      m.put(EMBED, new long[] {c.vocabSize(), h});
    }
    for (int i = from; i < to; i++) {
      m.put(layer(i, "input_layernorm.weight"), new long[] {h});
      m.put(layer(i, "self_attn.q_proj.weight"), new long[] {q, h});
      m.put(layer(i, "self_attn.k_proj.weight"), new long[] {kv, h});
      m.put(layer(i, "self_attn.v_proj.weight"), new long[] {kv, h});
      if (c.attentionBias()) {
        m.put(layer(i, "self_attn.q_proj.bias"), new long[] {q});
        m.put(layer(i, "self_attn.k_proj.bias"), new long[] {kv});
        m.put(layer(i, "self_attn.v_proj.bias"), new long[] {kv});
      }
      m.put(layer(i, "self_attn.o_proj.weight"), new long[] {h, q});
      m.put(layer(i, "post_attention_layernorm.weight"), new long[] {h});
      m.put(layer(i, "mlp.gate_proj.weight"), new long[] {inter, h});
      m.put(layer(i, "mlp.up_proj.weight"), new long[] {inter, h});
      m.put(layer(i, "mlp.down_proj.weight"), new long[] {h, inter});
    }
    if (to == c.numLayers()) {
      m.put(NORM, new long[] {h});
      m.put(c.tieWordEmbeddings() ? EMBED : LM_HEAD, new long[] {c.vocabSize(), h});
    }
    return m;
  }
}
