package dev.dsd.pipeline.onnx;

import static dev.dsd.pipeline.onnx.GraphWriter.FLOAT;
import static dev.dsd.pipeline.onnx.GraphWriter.INT64;
import static dev.dsd.pipeline.onnx.GraphWriter.floatAttr;
import static dev.dsd.pipeline.onnx.GraphWriter.intAttr;
import static dev.dsd.pipeline.onnx.GraphWriter.intsAttr;

import dev.dsd.pipeline.checkpoint.TensorNames;
import dev.dsd.pipeline.model.ModelConfig;
import dev.dsd.pipeline.model.WeightFormat;
import dev.dsd.pipeline.onnx.proto.Onnx.ModelProto;
import dev.dsd.pipeline.onnx.proto.Onnx.OperatorSetIdProto;

/**
 * Writes the ONNX graph of a Llama-family shard: layers {@code [from, to)} of a model.
 *
 * <pre>
 * inputs   input_ids int64[T]            (first shard)   | hidden_in f32[T,H]  (other shards)
 *          positions int64[T]            absolute positions of the T new tokens (rotary)
 *          attn_mask f32[T,S]            0 / -inf, S = past_len + T (causal over past + new)
 *          past_len  int64[1]            how much of each past_* to use: truncation costs nothing
 *          past_key_i, past_value_i      f32[kvH, P, hd] per hosted layer i, P >= past_len
 * outputs  logits f32[T,V]               (last shard)    | hidden_out f32[T,H] (other shards)
 *          present_key_i, present_value_i f32[kvH, past_len+T, hd]
 * </pre>
 *
 * A single shard {@code [0, L)} is the whole model. Weights are external initializers under their
 * Hugging Face names (see {@link GraphWriter#externalWeight}); the rotary tables {@code rope_cos},
 * {@code rope_sin} f32[maxPos, hd/2] likewise, computed by {@link RotaryTables}.
 *
 * <p>Plain ONNX operators (Gemm, MatMul, Softmax, opset 17) plus ORT's {@code SimplifiedLayerNormalization}
 * and {@code com.microsoft} {@code SkipSimplifiedLayerNormalization} (residual add + RMSNorm),
 * {@code RotaryEmbedding} and, for q8/q4, {@code MatMulNBits}; q/k/v and gate/up are one stacked
 * projection each ({@link RunTensors#qkv}). Grouped-query attention is a broadcast MatMul of
 * queries [kvH, rep, T, hd] against keys [kvH, 1, hd, S], so no KV head is ever copied. ORT's fused
 * GroupQueryAttention wants its own cache layout and positions implied by sequence lengths; an
 * explicit mask keeps "verify k drafts on top of a truncated cache" a matter of inputs.
 */
public final class ShardGraphBuilder {
  public static final String INPUT_IDS = "input_ids";
  public static final String HIDDEN_IN = "hidden_in";
  public static final String POSITIONS = "positions";
  public static final String MASK = "attn_mask";
  public static final String PAST_LEN = "past_len";
  public static final String LOGITS = "logits";
  public static final String HIDDEN_OUT = "hidden_out";
  public static final String ROPE_COS = "rope_cos";
  public static final String ROPE_SIN = "rope_sin";
  static final long OPSET = 17;
  static final long IR_VERSION = 8;

  private ShardGraphBuilder() {}

  public static String pastKey(int layer) {
    return "past_key_" + layer;
  }

  public static String pastValue(int layer) {
    return "past_value_" + layer;
  }

  public static String presentKey(int layer) {
    return "present_key_" + layer;
  }

  public static String presentValue(int layer) {
    return "present_value_" + layer;
  }

  public static ModelProto build(ModelConfig c, int from, int to) {
    return build(c, from, to, WeightFormat.F32);
  }

  /** The graph over weights in {@code format} ({@link RunTensors} says which initializers it reads). */
  public static ModelProto build(ModelConfig c, int from, int to, WeightFormat format) {
    if (from < 0 || from >= to || to > c.numLayers()) {
      throw new IllegalArgumentException("layer range [" + from + ", " + to + ") outside [0, " + c.numLayers() + ")");
    }
    GraphWriter g = new GraphWriter();
    g.graph.setName("dsd_shard_" + from + "_" + to);
    long h = c.hiddenSize();
    long hd = c.headDim();
    long kvH = c.numKvHeads();
    long nH = c.numHeads();

    String x;
    if (from == 0) {
      g.input(INPUT_IDS, INT64, "T");
      x = null; // after the weights are declared
    } else {
      g.input(HIDDEN_IN, FLOAT, "T", h);
      x = HIDDEN_IN;
    }
    g.input(POSITIONS, INT64, "T");
    g.input(MASK, FLOAT, "T", "S");
    g.input(PAST_LEN, INT64, 1L);
    g.declare(RunTensors.forShard(c, from, to, format));
    if (from == 0) {
      x = g.embed(INPUT_IDS);
    }

    String one = g.ints(1);
    String zero = g.ints(0);
    // rotary reads [B=1, T, heads * hd] and positions [1, T]
    String pos2 = g.op("Unsqueeze", new String[] {POSITIONS, zero});
    String q3Shape = g.ints(1, -1, nH * hd);
    String k3Shape = g.ints(1, -1, kvH * hd);
    String qScale = g.scalar((float) (1.0 / Math.sqrt(hd)));
    String qShape = g.ints(0, kvH, nH / kvH, hd);
    String headsShape = g.ints(-1, nH, hd);
    String kvShape = g.ints(-1, kvH, hd);
    String flatShape = g.ints(0, nH * hd);

    Residual res = new Residual(g, x, c.rmsNormEps());
    for (int i = from; i < to; i++) {
      g.input(pastKey(i), FLOAT, kvH, "P", hd);
      g.input(pastValue(i), FLOAT, kvH, "P", hd);
      String hN = res.norm(TensorNames.layer(i, "input_layernorm.weight"));
      String[] qkv = qkv(g, c, hN, i);
      String q = g.op("Reshape", new String[] {rope(g, qkv[0], pos2, q3Shape, nH), headsShape});
      String k = g.op("Reshape", new String[] {rope(g, qkv[1], pos2, k3Shape, kvH), kvShape});
      String v = g.op("Reshape", new String[] {qkv[2], kvShape});
      // [T, kvH, hd] -> [kvH, T, hd], appended after the used part of the past.
      String kT = g.op("Transpose", new String[] {k}, intsAttr("perm", 1, 0, 2));
      String vT = g.op("Transpose", new String[] {v}, intsAttr("perm", 1, 0, 2));
      String pastK = g.op("Slice", new String[] {pastKey(i), zero, PAST_LEN, one});
      String pastV = g.op("Slice", new String[] {pastValue(i), zero, PAST_LEN, one});
      String presentK = g.op("Concat", new String[] {pastK, kT}, intAttr("axis", 1));
      String presentV = g.op("Concat", new String[] {pastV, vT}, intAttr("axis", 1));
      g.output(presentK, presentKey(i), FLOAT, kvH, "S", hd);
      g.output(presentV, presentValue(i), FLOAT, kvH, "S", hd);
      // queries [T, nH, hd] -> [T, kvH, rep, hd] -> [kvH, rep, T, hd]; head h = kvHead * rep + r, as HF's repeat_kv.
      String qG = g.op("Transpose", new String[] {g.op("Reshape", new String[] {g.op("Mul", new String[] {q, qScale}), qShape})},
          intsAttr("perm", 1, 2, 0, 3));
      String keys = g.op("Transpose", new String[] {g.op("Unsqueeze", new String[] {presentK, one})}, intsAttr("perm", 0, 1, 3, 2));
      String scores = g.op("Add", new String[] {g.op("MatMul", new String[] {qG, keys}), MASK});
      String probs = g.op("Softmax", new String[] {scores}, intAttr("axis", -1));
      String ctx = g.op("MatMul", new String[] {probs, g.op("Unsqueeze", new String[] {presentV, one})});
      String merged = g.op("Reshape", new String[] {g.op("Transpose", new String[] {ctx}, intsAttr("perm", 2, 0, 1, 3)), flatShape});
      res.add(g.linear(merged, TensorNames.layer(i, "self_attn.o_proj.weight"), null));
      String h2 = res.norm(TensorNames.layer(i, "post_attention_layernorm.weight"));
      res.add(mlp(g, c, h2, i));
    }

    if (to == c.numLayers()) {
      String normed = res.norm(TensorNames.NORM);
      g.output(g.linear(normed, RunTensors.HEAD, null), LOGITS, FLOAT, "T", (long) c.vocabSize());
    } else {
      g.output(res.value(), HIDDEN_OUT, FLOAT, "T", h);
    }
    return ModelProto.newBuilder()
        .setIrVersion(IR_VERSION)
        .setProducerName("dsd")
        .addOpsetImport(OperatorSetIdProto.newBuilder().setDomain("").setVersion(OPSET))
        .addOpsetImport(OperatorSetIdProto.newBuilder().setDomain(GraphWriter.MS_DOMAIN).setVersion(1))
        .setGraph(g.graph)
        .build();
  }

  /**
   * The residual stream: {@code x} plus, after a sublayer, a {@code delta} not yet added. The next norm
   * adds it with ORT's {@code SkipSimplifiedLayerNormalization} (the sum and the RMSNorm in one kernel,
   * which ORT 1.29 does not fuse by itself), so each layer saves two Add nodes.
   */
  static final class Residual {
    private final GraphWriter g;
    private final double eps;
    private String x;
    private String delta;

    Residual(GraphWriter g, String x, double eps) {
      this.g = g;
      this.x = x;
      this.eps = eps;
    }

    /** RMSNorm(x + delta) with {@code weight}; x + delta becomes the stream. */
    String norm(String weight) {
      if (delta == null) {
        return rmsNorm(g, x, weight, eps);
      }
      String[] outs = g.opOutputs("SkipSimplifiedLayerNormalization", GraphWriter.MS_DOMAIN, new String[] {delta, x, weight},
          new boolean[] {true, false, false, true}, floatAttr("epsilon", (float) eps));
      x = outs[3];
      delta = null;
      return outs[0];
    }

    /** Queues a sublayer's output to be added to the stream. */
    void add(String d) {
      value();
      delta = d;
    }

    /** The stream with everything added. */
    String value() {
      if (delta != null) {
        x = g.op("Add", new String[] {x, delta});
        delta = null;
      }
      return x;
    }
  }

  static String rmsNorm(GraphWriter g, String x, String weight, double eps) {
    // ORT registers SimplifiedLayerNormalization (RMSNorm) in the default domain.
    return g.op("SimplifiedLayerNormalization", new String[] {x, weight}, intAttr("axis", -1),
        floatAttr("epsilon", (float) eps));
  }

  /** Layer i's queries [N, q], keys and values [N, kv] from one stacked projection ({@link RunTensors#qkv}). */
  static String[] qkv(GraphWriter g, ModelConfig c, String x, int layer) {
    String y = g.linear(x, RunTensors.qkv(layer), c.attentionBias() ? RunTensors.qkvBias(layer) : null);
    return g.split(y, c.qDim(), c.kvDim(), c.kvDim());
  }

  /** Layer i's SwiGLU MLP: down(silu(gate x) * up x), gate and up from one stacked projection. */
  static String mlp(GraphWriter g, ModelConfig c, String x, int layer) {
    String[] gu = g.split(g.linear(x, RunTensors.gateUp(layer), null), c.intermediateSize(), c.intermediateSize());
    String act = g.op("Mul", new String[] {g.op("Mul", new String[] {gu[0], g.op("Sigmoid", new String[] {gu[0]})}), gu[1]});
    return g.linear(act, TensorNames.layer(layer, "mlp.down_proj.weight"), null);
  }

  /**
   * HF's "rotate_half" rotary, (x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin) per head, as ORT's
   * {@code com.microsoft:RotaryEmbedding}: one kernel instead of eight small ops per projection, and it
   * takes explicit positions, so tree rounds (positions by depth) and ragged rows use it too.
   * {@code rows} is [N, heads * hd], viewed as [B, T, heads * hd] by {@code shape3}; positions [B, T].
   */
  static String rope(GraphWriter g, String rows, String positions, String shape3, long heads) {
    String x = g.op("Reshape", new String[] {rows, shape3});
    return g.op("RotaryEmbedding", GraphWriter.MS_DOMAIN, new String[] {x, positions, ROPE_COS, ROPE_SIN},
        intAttr("interleaved", 0), intAttr("num_heads", heads));
  }

}
