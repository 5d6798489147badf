package dev.dsd.pipeline.onnx;

import static dev.dsd.pipeline.onnx.GraphWriter.FLOAT;
import static dev.dsd.pipeline.onnx.GraphWriter.INT64;
import static dev.dsd.pipeline.onnx.GraphWriter.intAttr;
import static dev.dsd.pipeline.onnx.GraphWriter.intsAttr;

import dev.dsd.pipeline.checkpoint.TensorNames;
import dev.dsd.pipeline.model.ModelConfig;
import dev.dsd.pipeline.model.WeightFormat;
import dev.dsd.pipeline.onnx.proto.Onnx.ModelProto;
import dev.dsd.pipeline.onnx.proto.Onnx.OperatorSetIdProto;

/**
 * Writes the ONNX graph a pipeline stage runs for several sessions' rounds at once: layers
 * {@code [from, to)} over B ragged rows, each with its own past length and its own number of new
 * tokens (right-padded to the longest row).
 *
 * <pre>
 * inputs   input_ids  int64[B,T]     (first shard)  | hidden_in f32[B*T,H] (other shards)
 *          positions  int64[B,T]     absolute positions (rotary) of each row's new tokens
 *          attn_mask  f32[B,T,P+T]   0 / -inf: row b sees its own past [0, len_b) and its new tokens
 *                                    causally; padding (past beyond len_b, new beyond n_b) is hidden
 *          past_key_i, past_value_i  f32[B,kvH,P,hd], P >= 1: row b's cache in [0, len_b)
 * outputs  logits     f32[B*T,V]     (last shard)   | hidden_out f32[B*T,H] (other shards)
 *          new_key_i, new_value_i    f32[B,kvH,T,hd]: only the new positions
 * </pre>
 *
 * Attention scores the queries against the past and against the new keys separately and joins the
 * (small) score matrices, so the cache is read in place and never concatenated into a present
 * tensor: the only copy of a row's cache per call is the runner's gather into the padded past.
 * Linear parts run on all B*T rows flattened; the per-layer projections, norms and rotary come from
 * {@link ShardGraphBuilder}'s emitters, so a change to how linear layers are written applies here.
 */
public final class StageBatchGraphBuilder {
  public static final String INPUT_IDS = ShardGraphBuilder.INPUT_IDS;
  public static final String HIDDEN_IN = ShardGraphBuilder.HIDDEN_IN;
  public static final String POSITIONS = ShardGraphBuilder.POSITIONS;
  public static final String MASK = ShardGraphBuilder.MASK;
  public static final String LOGITS = ShardGraphBuilder.LOGITS;
  public static final String HIDDEN_OUT = ShardGraphBuilder.HIDDEN_OUT;

  private StageBatchGraphBuilder() {}

  public static String newKey(int layer) {
    return BatchGraphBuilder.newKey(layer);
  }

  public static String newValue(int layer) {
    return BatchGraphBuilder.newValue(layer);
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
    g.graph.setName("dsd_stage_batch_" + from + "_" + to);
    long h = c.hiddenSize();
    long hd = c.headDim();
    long kvH = c.numKvHeads();
    long nH = c.numHeads();
    long rep = nH / kvH;

    String flat = g.ints(-1);
    g.input(POSITIONS, INT64, "B", "T");
    g.input(MASK, FLOAT, "B", "T", "S");
    String bt = g.op("Shape", new String[] {POSITIONS});
    String x;
    if (from == 0) {
      g.input(INPUT_IDS, INT64, "B", "T");
      x = null; // after the weights are declared
    } else {
      g.input(HIDDEN_IN, FLOAT, "N", h);
      x = HIDDEN_IN;
    }
    g.declare(RunTensors.forShard(c, from, to, format));
    if (from == 0) {
      x = g.embed(g.op("Reshape", new String[] {INPUT_IDS, flat}));
    }

    // [B,T,S] -> [B,1,1,T,S], broadcast over KV heads and the queries sharing each
    String mask = g.op("Unsqueeze", new String[] {MASK, g.ints(1, 2)});
    String kvShape5 = g.op("Concat", new String[] {bt, g.ints(kvH, hd)}, intAttr("axis", 0));
    String qShape5 = g.op("Concat", new String[] {bt, g.ints(kvH, rep, hd)}, intAttr("axis", 0));
    // rotary reads [B, T, heads * hd] with positions [B, T]
    String q3Shape = g.op("Concat", new String[] {bt, g.ints(nH * hd)}, intAttr("axis", 0));
    String k3Shape = g.op("Concat", new String[] {bt, g.ints(kvH * hd)}, intAttr("axis", 0));
    String qScale = g.scalar((float) (1.0 / Math.sqrt(hd)));
    String headsShape = g.ints(-1, nH, hd);
    String kvShape = g.ints(-1, kvH, hd);
    String rowsShape = g.ints(-1, nH * hd);
    String two = g.ints(2);
    String minusOne = g.ints(-1);
    String zero = g.ints(0);
    String end = g.ints(Long.MAX_VALUE);
    String pastLen = null; // P, read from the first past tensor's shape

    ShardGraphBuilder.Residual res = new ShardGraphBuilder.Residual(g, x, c.rmsNormEps());
    for (int i = from; i < to; i++) {
      String pastK = ShardGraphBuilder.pastKey(i);
      String pastV = ShardGraphBuilder.pastValue(i);
      g.input(pastK, FLOAT, "B", kvH, "P", hd);
      g.input(pastV, FLOAT, "B", kvH, "P", hd);
      if (pastLen == null) {
        pastLen = g.op("Slice", new String[] {g.op("Shape", new String[] {pastK}), two, g.ints(3)});
      }
      String hN = res.norm(TensorNames.layer(i, "input_layernorm.weight"));
      String[] qkv = ShardGraphBuilder.qkv(g, c, hN, i);
      String q = g.op("Reshape", new String[] {ShardGraphBuilder.rope(g, qkv[0], POSITIONS, q3Shape, nH), headsShape});
      String k = g.op("Reshape", new String[] {ShardGraphBuilder.rope(g, qkv[1], POSITIONS, k3Shape, kvH), kvShape});
      String v = g.op("Reshape", new String[] {qkv[2], kvShape});
      // [N, kvH, hd] -> [B, T, kvH, hd] -> [B, kvH, T, hd]
      String kB = g.op("Transpose", new String[] {g.op("Reshape", new String[] {k, kvShape5})}, intsAttr("perm", 0, 2, 1, 3));
      String vB = g.op("Transpose", new String[] {g.op("Reshape", new String[] {v, kvShape5})}, intsAttr("perm", 0, 2, 1, 3));
      g.output(kB, newKey(i), FLOAT, "B", kvH, "T", hd);
      g.output(vB, newValue(i), FLOAT, "B", kvH, "T", hd);
      // queries [N, nH, hd] -> [B, T, kvH, rep, hd] -> [B, kvH, rep, T, hd]; head h = kvHead * rep + r
      String qG = g.op("Transpose", new String[] {g.op("Reshape", new String[] {g.op("Mul", new String[] {q, qScale}),
          qShape5})}, intsAttr("perm", 0, 2, 3, 1, 4));
      String keysPast = g.op("Transpose", new String[] {g.op("Unsqueeze", new String[] {pastK, two})},
          intsAttr("perm", 0, 1, 2, 4, 3));
      String keysNew = g.op("Transpose", new String[] {g.op("Unsqueeze", new String[] {kB, two})},
          intsAttr("perm", 0, 1, 2, 4, 3));
      String scores = g.op("Concat", new String[] {g.op("MatMul", new String[] {qG, keysPast}),
          g.op("MatMul", new String[] {qG, keysNew})}, intAttr("axis", -1));
      String probs = g.op("Softmax", new String[] {g.op("Add", new String[] {scores, mask})}, intAttr("axis", -1));
      String probsPast = g.op("Slice", new String[] {probs, zero, pastLen, minusOne});
      String probsNew = g.op("Slice", new String[] {probs, pastLen, end, minusOne});
      String ctx = g.op("Add", new String[] {
          g.op("MatMul", new String[] {probsPast, g.op("Unsqueeze", new String[] {pastV, two})}),
          g.op("MatMul", new String[] {probsNew, g.op("Unsqueeze", new String[] {vB, two})})});
      String merged = g.op("Reshape", new String[] {g.op("Transpose", new String[] {ctx}, intsAttr("perm", 0, 3, 1, 2, 4)),
          rowsShape});
      res.add(g.linear(merged, TensorNames.layer(i, "self_attn.o_proj.weight"), null));
      String h2 = res.norm(TensorNames.layer(i, "post_attention_layernorm.weight"));
      res.add(ShardGraphBuilder.mlp(g, c, h2, i));
    }
    if (to == c.numLayers()) {
      String normed = res.norm(TensorNames.NORM);
      g.output(g.linear(normed, RunTensors.HEAD, null), LOGITS, FLOAT, "N", (long) c.vocabSize());
    } else {
      g.output(res.value(), HIDDEN_OUT, FLOAT, "N", h);
    }
    return ModelProto.newBuilder()
        .setIrVersion(ShardGraphBuilder.IR_VERSION)
        .setProducerName("dsd")
        .addOpsetImport(OperatorSetIdProto.newBuilder().setDomain("").setVersion(ShardGraphBuilder.OPSET))
        .addOpsetImport(OperatorSetIdProto.newBuilder().setDomain(GraphWriter.MS_DOMAIN).setVersion(1))
        .setGraph(g.graph)
        .build();
  }
}
