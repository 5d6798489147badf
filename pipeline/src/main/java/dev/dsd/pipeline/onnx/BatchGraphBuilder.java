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
 * Writes the ONNX graph of a whole model that runs B independent sequences in one pass, each with
 * its own past length: the draft node's forward over all sessions waiting for a draft step.
 *
 * <pre>
 * inputs   input_ids  int64[B,T]           row b's new tokens, padded at the end to the longest row
 *          positions  int64[B,T]           absolute positions (rotary) of those tokens
 *          attn_mask  f32[B,T,S]           0 / -inf, S = P + T: hides each row's padded past and
 *                                          its padded new tokens, causal over the new part
 *          past_key_i, past_value_i        f32[B, kvH, P, hd]: row b's cache in [0, len_b), padding after
 * outputs  logits     f32[B*T, V]          row-major by (b, t)
 *          new_key_i, new_value_i          f32[B, kvH, T, hd]: only the new positions, which the caller
 *                                          appends to each row's own cache
 * </pre>
 *
 * Returning just the new keys and values (not the padded present) keeps the copy back into each
 * session's cache proportional to the tokens processed. The layer arithmetic is the shard graph's
 * ({@link ShardGraphBuilder}) with tokens flattened to N = B*T rows for the linear parts and
 * reshaped to [B, ...] only around attention.
 */
public final class BatchGraphBuilder {
  public static final String INPUT_IDS = ShardGraphBuilder.INPUT_IDS;
  public static final String POSITIONS = ShardGraphBuilder.POSITIONS;
  public static final String MASK = ShardGraphBuilder.MASK;
  public static final String LOGITS = ShardGraphBuilder.LOGITS;

  private BatchGraphBuilder() {}

  public static String newKey(int layer) {
    return "new_key_" + layer;
  }

  public static String newValue(int layer) {
    return "new_value_" + layer;
  }

  public static ModelProto build(ModelConfig c) {
    return build(c, WeightFormat.F32);
  }

  public static ModelProto build(ModelConfig c, WeightFormat format) {
    GraphWriter g = new GraphWriter();
    g.graph.setName("dsd_batch_" + c.numLayers());
    long hd = c.headDim();
    long kvH = c.numKvHeads();
    long nH = c.numHeads();
    long rep = nH / kvH;

    g.input(INPUT_IDS, INT64, "B", "T");
    g.input(POSITIONS, INT64, "B", "T");
    g.input(MASK, FLOAT, "B", "T", "S");
    g.declare(RunTensors.forShard(c, 0, c.numLayers(), format));

    String flat = g.ints(-1);
    String x = g.embed(g.op("Reshape", new String[] {INPUT_IDS, flat}));
    // [B,T,S] -> [B,1,1,T,S], broadcast over KV heads and the queries sharing each
    String mask = g.op("Unsqueeze", new String[] {MASK, g.ints(1, 2)});
    String bt = g.op("Shape", new String[] {INPUT_IDS});
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

    ShardGraphBuilder.Residual res = new ShardGraphBuilder.Residual(g, x, c.rmsNormEps());
    for (int i = 0; i < c.numLayers(); i++) {
      String pastK = ShardGraphBuilder.pastKey(i);
      String pastV = ShardGraphBuilder.pastValue(i);
      g.input(pastK, FLOAT, "B", kvH, "P", hd);
      g.input(pastV, FLOAT, "B", kvH, "P", hd);
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
      String presentK = g.op("Concat", new String[] {pastK, kB}, intAttr("axis", 2));
      String presentV = g.op("Concat", new String[] {pastV, vB}, intAttr("axis", 2));
      // queries [N, nH, hd] -> [B, T, kvH, rep, hd] -> [B, kvH, rep, T, hd]; head h = kvHead * rep + r
      String qG = g.op("Transpose", new String[] {g.op("Reshape", new String[] {g.op("Mul", new String[] {q, qScale}),
          qShape5})}, intsAttr("perm", 0, 2, 3, 1, 4));
      String keys = g.op("Transpose", new String[] {g.op("Unsqueeze", new String[] {presentK, two})},
          intsAttr("perm", 0, 1, 2, 4, 3));
      String scores = g.op("Add", new String[] {g.op("MatMul", new String[] {qG, keys}), mask});
      String probs = g.op("Softmax", new String[] {scores}, intAttr("axis", -1));
      String ctx = g.op("MatMul", new String[] {probs, g.op("Unsqueeze", new String[] {presentV, two})});
      String merged = g.op("Reshape", new String[] {g.op("Transpose", new String[] {ctx}, intsAttr("perm", 0, 3, 1, 2, 4)),
          rowsShape});
      res.add(g.linear(merged, TensorNames.layer(i, "self_attn.o_proj.weight"), null));
      String h2 = res.norm(TensorNames.layer(i, "post_attention_layernorm.weight"));
      res.add(ShardGraphBuilder.mlp(g, c, h2, i));
    }
    String normed = res.norm(TensorNames.NORM);
    g.output(g.linear(normed, RunTensors.HEAD, null), LOGITS, FLOAT, "N", (long) c.vocabSize());
    return ModelProto.newBuilder()
        .setIrVersion(ShardGraphBuilder.IR_VERSION)
        .setProducerName("dsd")
        .addOpsetImport(OperatorSetIdProto.newBuilder().setDomain("").setVersion(ShardGraphBuilder.OPSET))
        .addOpsetImport(OperatorSetIdProto.newBuilder().setDomain(GraphWriter.MS_DOMAIN).setVersion(1))
        .setGraph(g.graph)
        .build();
  }
}
