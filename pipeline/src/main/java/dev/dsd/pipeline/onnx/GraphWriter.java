package dev.dsd.pipeline.onnx;

import dev.dsd.pipeline.onnx.proto.Onnx.AttributeProto;
import dev.dsd.pipeline.onnx.proto.Onnx.GraphProto;
import dev.dsd.pipeline.onnx.proto.Onnx.NodeProto;
import dev.dsd.pipeline.onnx.proto.Onnx.StringStringEntryProto;
import dev.dsd.pipeline.onnx.proto.Onnx.TensorProto;
import dev.dsd.pipeline.onnx.proto.Onnx.TensorShapeProto;
import dev.dsd.pipeline.onnx.proto.Onnx.TypeProto;
import dev.dsd.pipeline.onnx.proto.Onnx.ValueInfoProto;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** Small helpers that keep the graph builder readable: one call per ONNX node, fresh value names. */
final class GraphWriter {
  static final int FLOAT = TensorProto.DataType.FLOAT_VALUE;
  static final int INT64 = TensorProto.DataType.INT64_VALUE;

  final GraphProto.Builder graph = GraphProto.newBuilder();
  private int counter;
  private RunTensors weights;

  /** Declares every run tensor as a supplied initializer; linears and the embedding then read them. */
  void declare(RunTensors w) {
    weights = w;
    for (RunTensors.Tensor t : w.tensors()) {
      externalWeight(t.name(), t.onnxType(), t.dims());
    }
  }

  /**
   * y = x W^T (+ b) for a linear weight stored [N, K] (Hugging Face's [out, in]) in the run format:
   * Gemm on f32; Gemm on a Cast for f16 (ORT 1.29 has no f16 GEMM for x86 CPUs); MatMulNBits for
   * q8/q4, with accuracy_level 4 (int8 activations), the fastest level measured here.
   */
  String linear(String x, String weight, String bias) {
    RunTensors.Linear l = weights.linear(weight);
    String y;
    switch (l.format()) {
      case F32 -> {
        return op("Gemm", bias == null ? new String[] {x, l.runName()} : new String[] {x, l.runName(), bias},
            intAttr("transB", 1));
      }
      case F16 -> {
        String w = op("Cast", new String[] {l.runName()}, intAttr("to", FLOAT));
        return op("Gemm", bias == null ? new String[] {x, w} : new String[] {x, w, bias}, intAttr("transB", 1));
      }
      default -> y = op("MatMulNBits", MS_DOMAIN, new String[] {x, l.runName() + ".q", l.runName() + ".scales"},
          intAttr("K", l.k()), intAttr("N", l.n()), intAttr("bits", dev.dsd.pipeline.quant.BlockQuantizer.bits(l.format())),
          intAttr("block_size", dev.dsd.pipeline.quant.BlockQuantizer.BLOCK), intAttr("accuracy_level", 4));
    }
    return bias == null ? y : op("Add", new String[] {y, bias});
  }

  /** Rows of the embedding for token ids, as f32 whatever the table's format. */
  String embed(String ids) {
    String rows = op("Gather", new String[] {weights.embedding(), ids}, intAttr("axis", 0));
    return weights.format() == dev.dsd.pipeline.model.WeightFormat.F32 ? rows
        : op("Cast", new String[] {rows}, intAttr("to", FLOAT));
  }

  static final String MS_DOMAIN = "com.microsoft";

  String fresh(String hint) {
    return hint + "_" + (counter++);
  }

  /** Adds a node and returns the name of its (first) output. */
  String op(String type, String[] inputs, AttributeProto... attrs) {
    return op(type, "", inputs, attrs);
  }

  String op(String type, String domain, String[] inputs, AttributeProto... attrs) {
    String out = fresh(type.toLowerCase());
    NodeProto.Builder n = NodeProto.newBuilder().setOpType(type).setName(out).addOutput(out);
    if (!domain.isEmpty()) {
      n.setDomain(domain);
    }
    for (String in : inputs) {
      n.addInput(in);
    }
    for (AttributeProto a : attrs) {
      n.addAttribute(a);
    }
    graph.addNode(n);
    return out;
  }

  /** Adds a node with {@code outputs} outputs, of which only those {@code wanted} get names ("" = omitted). */
  String[] opOutputs(String type, String domain, String[] inputs, boolean[] wanted, AttributeProto... attrs) {
    String[] outs = new String[wanted.length];
    NodeProto.Builder n = NodeProto.newBuilder().setOpType(type);
    if (!domain.isEmpty()) {
      n.setDomain(domain);
    }
    for (String in : inputs) {
      n.addInput(in);
    }
    for (int i = 0; i < wanted.length; i++) {
      outs[i] = wanted[i] ? fresh(type.toLowerCase()) : "";
      n.addOutput(outs[i]);
    }
    for (AttributeProto a : attrs) {
      n.addAttribute(a);
    }
    graph.addNode(n.setName(fresh(type.toLowerCase() + "_node")));
    return outs;
  }

  /** Splits the last axis of {@code x} into parts of the given sizes; returns their names. */
  String[] split(String x, long... sizes) {
    String[] outs = new String[sizes.length];
    NodeProto.Builder n = NodeProto.newBuilder().setOpType("Split").addInput(x).addInput(ints(sizes))
        .addAttribute(intAttr("axis", -1));
    for (int i = 0; i < outs.length; i++) {
      outs[i] = fresh("split");
      n.addOutput(outs[i]);
    }
    graph.addNode(n.setName(outs[0] + "_node"));
    return outs;
  }

  /** Renames a value to a graph output name with an Identity node. */
  void output(String value, String name, int elemType, Object... dims) {
    graph.addNode(NodeProto.newBuilder().setOpType("Identity").setName(name).addInput(value).addOutput(name));
    graph.addOutput(valueInfo(name, elemType, dims));
  }

  void input(String name, int elemType, Object... dims) {
    graph.addInput(valueInfo(name, elemType, dims));
  }

  /** A constant int64 vector stored in the graph (shapes, axes: a few bytes). */
  String ints(long... values) {
    String name = fresh("const");
    ByteBuffer b = ByteBuffer.allocate(values.length * 8).order(ByteOrder.LITTLE_ENDIAN);
    for (long v : values) {
      b.putLong(v);
    }
    graph.addInitializer(TensorProto.newBuilder().setName(name).setDataType(INT64).addDims(values.length)
        .setRawData(com.google.protobuf.ByteString.copyFrom(b.array())));
    return name;
  }

  /** A scalar float constant. */
  String scalar(float value) {
    String name = fresh("scalar");
    ByteBuffer b = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putFloat(value);
    graph.addInitializer(TensorProto.newBuilder().setName(name).setDataType(FLOAT)
        .setRawData(com.google.protobuf.ByteString.copyFrom(b.array())));
    return name;
  }

  /**
   * Declares a float initializer whose data is supplied at session creation
   * (ORT's {@code addExternalInitializers}), so weights never enter the protobuf: a real checkpoint
   * would exceed protobuf's 2 GiB limit, and the copy would double memory.
   */
  void externalWeight(String name, long... dims) {
    externalWeight(name, FLOAT, dims);
  }

  void externalWeight(String name, int type, long... dims) {
    TensorProto.Builder t = TensorProto.newBuilder().setName(name).setDataType(type)
        .setDataLocation(TensorProto.DataLocation.EXTERNAL)
        .addExternalData(StringStringEntryProto.newBuilder().setKey("location").setValue("dsd-supplied"));
    for (long d : dims) {
      t.addDims(d);
    }
    graph.addInitializer(t);
  }

  static AttributeProto intAttr(String name, long v) {
    return AttributeProto.newBuilder().setName(name).setType(AttributeProto.AttributeType.INT).setI(v).build();
  }

  static AttributeProto floatAttr(String name, float v) {
    return AttributeProto.newBuilder().setName(name).setType(AttributeProto.AttributeType.FLOAT).setF(v).build();
  }

  static AttributeProto intsAttr(String name, long... v) {
    AttributeProto.Builder a = AttributeProto.newBuilder().setName(name).setType(AttributeProto.AttributeType.INTS);
    for (long x : v) {
      a.addInts(x);
    }
    return a.build();
  }

  /** Dims are Longs (fixed) or Strings (symbolic, e.g. "T"). */
  static ValueInfoProto valueInfo(String name, int elemType, Object... dims) {
    TensorShapeProto.Builder s = TensorShapeProto.newBuilder();
    for (Object d : dims) {
      TensorShapeProto.Dimension.Builder dim = TensorShapeProto.Dimension.newBuilder();
      if (d instanceof String p) {
        dim.setDimParam(p);
      } else {
        dim.setDimValue(((Number) d).longValue());
      }
      s.addDim(dim);
    }
    return ValueInfoProto.newBuilder().setName(name)
        .setType(TypeProto.newBuilder().setTensorType(TypeProto.Tensor.newBuilder().setElemType(elemType).setShape(s)))
        .build();
  }
}
