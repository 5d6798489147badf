package dev.dsd.pipeline.reference;

import dev.dsd.pipeline.checkpoint.TensorNames;
import dev.dsd.pipeline.model.ModelConfig;
import dev.dsd.pipeline.model.WeightSource;
import dev.dsd.pipeline.onnx.RotaryTables;

/**
 * A plain-Java forward pass of layers {@code [from, to)} of a Llama-family model, written to be read,
 * not to be fast: the oracle the ONNX graphs are tested against. Weights are immutable and loaded
 * once; the KV cache ({@link Cache}) is per conversation, as in mukel/llama3.java.
 */
public final class ReferenceModel {
  private final ModelConfig c;
  private final int from;
  private final int to;
  private final float[] embed; // (vocab, hidden) when first
  private final Layer[] layers;
  private final float[] norm; // (hidden) when last
  private final float[] head; // (vocab, hidden) when last
  private final double[] invFreq;

  private record Layer(float[] inNorm, float[] wq, float[] wk, float[] wv, float[] bq, float[] bk, float[] bv,
      float[] wo, float[] postNorm, float[] gate, float[] up, float[] down) {}

  /** Per-conversation keys and values: (layer, position, kvDim). */
  public final class Cache {
    final float[][][] keys;
    final float[][][] values;
    int length;

    Cache(int maxTokens) {
      keys = new float[to - from][maxTokens][];
      values = new float[to - from][maxTokens][];
    }

    public int length() {
      return length;
    }

    public void truncate(int n) {
      if (n < 0 || n > length) {
        throw new IllegalArgumentException("cannot truncate to " + n + ", cache holds " + length);
      }
      length = n;
    }
  }

  public ReferenceModel(ModelConfig c, WeightSource w, int from, int to) {
    this.c = c;
    this.from = from;
    this.to = to;
    this.embed = from == 0 ? w.tensor(TensorNames.EMBED) : null;
    this.layers = new Layer[to - from];
    for (int i = from; i < to; i++) {
      boolean b = c.attentionBias();
      layers[i - from] = new Layer(
          w.tensor(TensorNames.layer(i, "input_layernorm.weight")),
          w.tensor(TensorNames.layer(i, "self_attn.q_proj.weight")),
          w.tensor(TensorNames.layer(i, "self_attn.k_proj.weight")),
          w.tensor(TensorNames.layer(i, "self_attn.v_proj.weight")),
          b ? w.tensor(TensorNames.layer(i, "self_attn.q_proj.bias")) : null,
          b ? w.tensor(TensorNames.layer(i, "self_attn.k_proj.bias")) : null,
          b ? w.tensor(TensorNames.layer(i, "self_attn.v_proj.bias")) : null,
          w.tensor(TensorNames.layer(i, "self_attn.o_proj.weight")),
          w.tensor(TensorNames.layer(i, "post_attention_layernorm.weight")),
          w.tensor(TensorNames.layer(i, "mlp.gate_proj.weight")),
          w.tensor(TensorNames.layer(i, "mlp.up_proj.weight")),
          w.tensor(TensorNames.layer(i, "mlp.down_proj.weight")));
    }
    boolean last = to == c.numLayers();
    this.norm = last ? w.tensor(TensorNames.NORM) : null;
    this.head = last ? w.tensor(c.tieWordEmbeddings() ? TensorNames.EMBED : TensorNames.LM_HEAD) : null;
    this.invFreq = RotaryTables.inverseFrequencies(c);
  }

  public Cache newCache(int maxTokens) {
    return new Cache(maxTokens);
  }

  /** First shard: token ids in; hidden states [T, H] or logits [T, V] out (row-major). */
  public float[] forwardTokens(Cache cache, int[] tokens) {
    int h = c.hiddenSize();
    float[] x = new float[tokens.length * h];
    for (int t = 0; t < tokens.length; t++) {
      System.arraycopy(embed, tokens[t] * h, x, t * h, h);
    }
    return forwardHidden(cache, x, tokens.length);
  }

  /** Hidden states [T, H] in; hidden states or logits out. */
  public float[] forwardHidden(Cache cache, float[] hidden, int tokens) {
    int h = c.hiddenSize();
    float[][] xs = new float[tokens][];
    for (int t = 0; t < tokens; t++) {
      xs[t] = java.util.Arrays.copyOfRange(hidden, t * h, (t + 1) * h);
    }
    for (int t = 0; t < tokens; t++) {
      int pos = cache.length + t;
      for (int l = 0; l < layers.length; l++) {
        xs[t] = block(l, xs[t], pos, cache);
      }
    }
    cache.length += tokens;
    if (head == null) {
      float[] out = new float[tokens * h];
      for (int t = 0; t < tokens; t++) {
        System.arraycopy(xs[t], 0, out, t * h, h);
      }
      return out;
    }
    int v = c.vocabSize();
    float[] logits = new float[tokens * v];
    for (int t = 0; t < tokens; t++) {
      float[] y = matvec(head, rmsNorm(xs[t], norm), v, h, null);
      System.arraycopy(y, 0, logits, t * v, v);
    }
    return logits;
  }

  /** One transformer block for one token at {@code pos}; its keys/values go into the cache. */
  private float[] block(int l, float[] x, int pos, Cache cache) {
    Layer w = layers[l];
    int h = c.hiddenSize();
    int hd = c.headDim();
    int nH = c.numHeads();
    int kvH = c.numKvHeads();
    float[] xn = rmsNorm(x, w.inNorm);
    float[] q = matvec(w.wq, xn, nH * hd, h, w.bq);
    float[] k = matvec(w.wk, xn, kvH * hd, h, w.bk);
    float[] v = matvec(w.wv, xn, kvH * hd, h, w.bv);
    rope(q, nH, pos);
    rope(k, kvH, pos);
    cache.keys[l][pos] = k;
    cache.values[l][pos] = v;
    float[] att = new float[nH * hd];
    int rep = nH / kvH;
    for (int head = 0; head < nH; head++) {
      int kvHead = head / rep; // HF repeat_kv: consecutive query heads share a KV head
      float[] scores = new float[pos + 1];
      float max = Float.NEGATIVE_INFINITY;
      for (int j = 0; j <= pos; j++) {
        float s = 0;
        for (int d = 0; d < hd; d++) {
          s += q[head * hd + d] * cache.keys[l][j][kvHead * hd + d];
        }
        scores[j] = s / (float) Math.sqrt(hd);
        max = Math.max(max, scores[j]);
      }
      float sum = 0;
      for (int j = 0; j <= pos; j++) {
        scores[j] = (float) Math.exp(scores[j] - max);
        sum += scores[j];
      }
      for (int j = 0; j <= pos; j++) {
        float p = scores[j] / sum;
        for (int d = 0; d < hd; d++) {
          att[head * hd + d] += p * cache.values[l][j][kvHead * hd + d];
        }
      }
    }
    float[] o = matvec(w.wo, att, h, nH * hd, null);
    float[] x1 = new float[h];
    for (int i = 0; i < h; i++) {
      x1[i] = x[i] + o[i];
    }
    float[] xn2 = rmsNorm(x1, w.postNorm);
    int inter = c.intermediateSize();
    float[] g = matvec(w.gate, xn2, inter, h, null);
    float[] u = matvec(w.up, xn2, inter, h, null);
    for (int i = 0; i < inter; i++) {
      g[i] = g[i] / (1f + (float) Math.exp(-g[i])) * u[i]; // SiLU(gate) * up
    }
    float[] d = matvec(w.down, g, h, inter, null);
    for (int i = 0; i < h; i++) {
      x1[i] += d[i];
    }
    return x1;
  }

  /** HF rotate_half layout: dimension i pairs with i + hd/2. */
  private void rope(float[] vec, int heads, int pos) {
    int hd = c.headDim();
    int half = hd / 2;
    for (int head = 0; head < heads; head++) {
      for (int i = 0; i < half; i++) {
        float angle = (float) pos * (float) invFreq[i];
        float cos = (float) Math.cos(angle);
        float sin = (float) Math.sin(angle);
        int a = head * hd + i;
        int b = a + half;
        float x1 = vec[a];
        float x2 = vec[b];
        vec[a] = x1 * cos - x2 * sin;
        vec[b] = x2 * cos + x1 * sin;
      }
    }
  }

  private float[] rmsNorm(float[] x, float[] weight) {
    double ss = 0;
    for (float f : x) {
      ss += (double) f * f;
    }
    float scale = (float) (1.0 / Math.sqrt(ss / x.length + c.rmsNormEps()));
    float[] y = new float[x.length];
    for (int i = 0; i < x.length; i++) {
      y[i] = weight[i] * (x[i] * scale);
    }
    return y;
  }

  /** y = W x (+ b) for W stored [rows, cols] row-major, as Hugging Face stores linear layers. */
  private static float[] matvec(float[] w, float[] x, int rows, int cols, float[] bias) {
    float[] y = new float[rows];
    for (int r = 0; r < rows; r++) {
      float s = 0;
      int off = r * cols;
      for (int k = 0; k < cols; k++) {
        s += w[off + k] * x[k];
      }
      y[r] = bias == null ? s : s + bias[r];
    }
    return y;
  }
}
