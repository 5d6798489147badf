package dev.dsd.pipeline.onnx;

import dev.dsd.pipeline.checkpoint.TensorNames;
import dev.dsd.pipeline.model.ModelConfig;
import dev.dsd.pipeline.model.ModelFormatException;
import dev.dsd.pipeline.model.WeightFormat;
import dev.dsd.pipeline.onnx.proto.Onnx.TensorProto;
import dev.dsd.pipeline.quant.BlockQuantizer;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The tensors a shard's graph reads in a {@link WeightFormat}, as ONNX Runtime holds them, and where
 * each comes from in the checkpoint. One list serves the graph builders (which declare them) and the
 * shard weights file (which fills them), so the two cannot disagree.
 *
 * <ul>
 *   <li>Linear weights [N, K]: f32 as is; f16 as half floats cast to f32 inside the graph; q8/q4 as
 *       {@code name.q} + {@code name.scales} for MatMulNBits ({@link BlockQuantizer}).
 *   <li>The embedding table a first shard gathers from: f32 in f32, f16 otherwise. A decode step reads
 *       T of its rows, so its size costs memory, not time; half precision halves it at no loss a
 *       4-bit table would bring.
 *   <li>The LM head: quantized like any linear weight (it is read whole every step); under
 *       {@code lm_head.weight} even when tied, then built from the embedding.
 *   <li>Norm weights, biases and the rotary tables: f32 (small).
 * </ul>
 */
public final class RunTensors {
  /** What the writer does to produce a tensor. */
  public enum Kind { F32, F16, Q_DATA, Q_SCALES, ROPE_COS, ROPE_SIN }

  /**
   * One initializer. {@code sources} are the checkpoint tensors it is made from, stacked along their
   * first dimension (one for most; q/k/v and gate/up are fused, see {@link #qkv}); {@code rows}/{@code cols}
   * the stacked [N, K] for linear weights (1 x n for vectors).
   */
  public record Tensor(String name, Kind kind, int onnxType, long[] dims, List<String> sources, long rows, long cols,
      WeightFormat format) {
    public long bytes() {
      long n = 1;
      for (long d : dims) {
        n *= d;
      }
      return n * switch (onnxType) {
        case TensorProto.DataType.FLOAT_VALUE -> 4;
        case TensorProto.DataType.FLOAT16_VALUE -> 2;
        default -> 1;
      };
    }
  }

  /** How the graph reads one logical linear weight [N, K]. */
  public record Linear(String runName, long n, long k, WeightFormat format) {}

  private final WeightFormat format;
  private final List<Tensor> tensors = new ArrayList<>();
  private final Map<String, Linear> linears = new LinkedHashMap<>();
  private String embedding;
  private String head;

  private RunTensors(WeightFormat format) {
    this.format = format;
  }

  public static final String HEAD = "lm_head.weight";

  /**
   * Layer i's q, k and v projections stacked into one [q + 2 kv, H] weight (and one bias where the model
   * has them): one MatMulNBits call reads the three and the activations are quantized once, instead of
   * three kernel launches on the same input. Blocks run along K and scales are per row, so the stacked
   * weight quantizes to exactly the rows of the three separate ones.
   */
  public static String qkv(int layer) {
    return TensorNames.layer(layer, "self_attn.qkv_proj.weight");
  }

  public static String qkvBias(int layer) {
    return TensorNames.layer(layer, "self_attn.qkv_proj.bias");
  }

  /** Layer i's gate and up projections stacked into one [2 I, H] weight, for the same reason as {@link #qkv}. */
  public static String gateUp(int layer) {
    return TensorNames.layer(layer, "mlp.gate_up_proj.weight");
  }
  /**
   * q4 keeps the LM head in q8, as llama.cpp's Q4 mixes keep their output matrix in more bits: the
   * head decides the next token directly, and 4 bits there cost most of q4's top-1 disagreement.
   */
  public static final WeightFormat HEAD_OF_Q4 = WeightFormat.Q8;

  /**
   * The run tensors of layers [from, to). Throws {@link ModelFormatException} naming the tensor when a
   * quantized format cannot take it (inputs not a multiple of the block).
   */
  public static RunTensors forShard(ModelConfig c, int from, int to, WeightFormat f) {
    RunTensors r = new RunTensors(f);
    Map<String, long[]> logical = TensorNames.forShard(c, from, to);
    boolean last = to == c.numLayers();
    String headSource = c.tieWordEmbeddings() ? TensorNames.EMBED : TensorNames.LM_HEAD;
    if (from == 0) {
      long[] s = logical.get(TensorNames.EMBED);
      r.embedding = TensorNames.EMBED;
      r.add(TensorNames.EMBED, f == WeightFormat.F32 ? Kind.F32 : Kind.F16, s, List.of(TensorNames.EMBED));
    }
    for (var e : logical.entrySet()) {
      String name = e.getKey();
      long[] s = e.getValue();
      if (name.equals(TensorNames.EMBED) || name.equals(TensorNames.LM_HEAD) || FUSED_AWAY.matcher(name).find()) {
        continue; // gather table above, head below; k, v, up go with q and gate
      }
      String layer = name.substring(0, name.lastIndexOf('.', name.lastIndexOf('.', name.lastIndexOf('.') - 1) - 1) + 1);
      if (name.endsWith("self_attn.q_proj.weight") || name.endsWith("self_attn.q_proj.bias")) {
        String kind = name.endsWith("weight") ? "weight" : "bias";
        List<String> parts = List.of(layer + "self_attn.q_proj." + kind, layer + "self_attn.k_proj." + kind,
            layer + "self_attn.v_proj." + kind);
        long rows = parts.stream().mapToLong(p -> logical.get(p)[0]).sum();
        String fused = layer + "self_attn.qkv_proj." + kind;
        if (s.length == 1) {
          r.add(fused, Kind.F32, new long[] {rows}, parts);
        } else {
          r.linear(fused, parts, new long[] {rows, s[1]}, f);
        }
      } else if (name.endsWith("mlp.gate_proj.weight")) {
        r.linear(layer + "mlp.gate_up_proj.weight", List.of(name, layer + "mlp.up_proj.weight"),
            new long[] {2 * s[0], s[1]}, f);
      } else if (s.length == 1) {
        r.add(name, Kind.F32, s, List.of(name));
      } else {
        r.linear(name, List.of(name), s, f);
      }
    }
    if (last) {
      long[] s = logical.get(headSource);
      if (from == 0 && c.tieWordEmbeddings() && (f == WeightFormat.F32 || f == WeightFormat.F16)) {
        // the gather table already holds the head in this format
        r.linears.put(HEAD, new Linear(TensorNames.EMBED, s[0], s[1], f));
      } else {
        r.linear(HEAD, List.of(headSource), s, f == WeightFormat.Q4 ? HEAD_OF_Q4 : f);
      }
      r.head = HEAD;
    }
    long[] rope = {c.maxPositionEmbeddings(), c.headDim() / 2};
    r.tensors.add(new Tensor(ShardGraphBuilder.ROPE_COS, Kind.ROPE_COS, TensorProto.DataType.FLOAT_VALUE, rope, List.of(),
        rope[0], rope[1], WeightFormat.F32));
    r.tensors.add(new Tensor(ShardGraphBuilder.ROPE_SIN, Kind.ROPE_SIN, TensorProto.DataType.FLOAT_VALUE, rope, List.of(),
        rope[0], rope[1], WeightFormat.F32));
    return r;
  }

  private static final java.util.regex.Pattern FUSED_AWAY =
      java.util.regex.Pattern.compile("(self_attn\\.[kv]_proj\\.(weight|bias)|mlp\\.up_proj\\.weight)$");

  private void add(String name, Kind kind, long[] shape, List<String> source) {
    int type = kind == Kind.F16 ? TensorProto.DataType.FLOAT16_VALUE : TensorProto.DataType.FLOAT_VALUE;
    long rows = shape.length == 2 ? shape[0] : 1;
    long cols = shape[shape.length - 1];
    tensors.add(new Tensor(name, kind, type, shape.clone(), source, rows, cols,
        kind == Kind.F16 ? WeightFormat.F16 : WeightFormat.F32));
  }

  private void linear(String name, List<String> source, long[] s, WeightFormat format) {
    long n = s[0];
    long k = s[1];
    switch (format) {
      case F32 -> add(name, Kind.F32, s, source);
      case F16 -> add(name, Kind.F16, s, source);
      case Q8, Q4 -> {
        if (k % BlockQuantizer.BLOCK != 0) {
          throw new ModelFormatException("tensor " + source.get(0) + " has " + k + " inputs, not a multiple of the "
              + format.id() + " block of " + BlockQuantizer.BLOCK + "; run this checkpoint with --weights f16 or f32");
        }
        long blocks = k / BlockQuantizer.BLOCK;
        tensors.add(new Tensor(name + ".q", Kind.Q_DATA, TensorProto.DataType.UINT8_VALUE,
            new long[] {n, blocks, BlockQuantizer.blobBytes(format)}, source, n, k, format));
        tensors.add(new Tensor(name + ".scales", Kind.Q_SCALES, TensorProto.DataType.FLOAT_VALUE,
            new long[] {n * blocks}, source, n, k, format));
      }
    }
    linears.put(name, new Linear(name, n, k, format));
  }

  public WeightFormat format() {
    return format;
  }

  public List<Tensor> tensors() {
    return List.copyOf(tensors);
  }

  /** How to read a linear weight given by its checkpoint name, or {@link #HEAD}. */
  public Linear linear(String name) {
    Linear l = linears.get(name);
    if (l == null) {
      throw new IllegalArgumentException("no linear weight " + name + " in this shard");
    }
    return l;
  }

  /** The gather table's initializer (first shard), or null. */
  public String embedding() {
    return embedding;
  }

  /** Name of the LM head linear (last shard), or null. */
  public String head() {
    return head;
  }

  /**
   * Bytes one call reads whatever its token count: every tensor but the rotary tables and the gather
   * table (of which a call reads only its tokens' rows), unless that table is also the head.
   */
  public long bytesReadPerCall() {
    boolean headIsTable = head != null && embedding != null && linears.get(head).runName().equals(embedding);
    return tensors.stream().filter(t -> t.kind() != Kind.ROPE_COS && t.kind() != Kind.ROPE_SIN)
        .filter(t -> headIsTable || !t.name().equals(embedding)).mapToLong(Tensor::bytes).sum();
  }

  /** Bytes of every run tensor: what the shard holds in memory. */
  public long bytes() {
    return tensors.stream().mapToLong(Tensor::bytes).sum();
  }
}
