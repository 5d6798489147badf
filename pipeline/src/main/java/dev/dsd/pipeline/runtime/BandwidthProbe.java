package dev.dsd.pipeline.runtime;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtLoggingLevel;
import ai.onnxruntime.OrtSession;
import dev.dsd.pipeline.onnx.proto.Onnx.AttributeProto;
import dev.dsd.pipeline.onnx.proto.Onnx.GraphProto;
import dev.dsd.pipeline.onnx.proto.Onnx.ModelProto;
import dev.dsd.pipeline.onnx.proto.Onnx.NodeProto;
import dev.dsd.pipeline.onnx.proto.Onnx.OperatorSetIdProto;
import dev.dsd.pipeline.onnx.proto.Onnx.TensorProto;
import dev.dsd.pipeline.onnx.proto.Onnx.TensorShapeProto;
import dev.dsd.pipeline.onnx.proto.Onnx.TypeProto;
import dev.dsd.pipeline.onnx.proto.Onnx.ValueInfoProto;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Map;

/**
 * The memory bandwidth a sequential read gets right now: ORT's ReduceSum over a buffer far larger than
 * the caches, so the same vectorised, multi-threaded code that runs a shard reads it. Kept open so a
 * benchmark can pair every timed call with a read taken just before it.
 */
public final class BandwidthProbe implements AutoCloseable {
  /** Largest buffer: one direct ByteBuffer. */
  public static final long MAX_BYTES = Integer.MAX_VALUE - 8;

  private final OrtEnvironment env = OrtEnvironment.getEnvironment();
  private final long floats;
  private final OrtSession session;
  private final OnnxTensor input;

  /** A probe that reads {@code bytes} (at most {@link #MAX_BYTES}) on {@code threads} ORT threads (0: all). */
  public BandwidthProbe(long bytes, int threads) {
    if (bytes < 8 || bytes > MAX_BYTES) {
      throw new IllegalArgumentException("probe buffer of " + bytes + " bytes is outside [8, " + MAX_BYTES + "]");
    }
    floats = bytes / 4;
    ByteBuffer buf = ByteBuffer.allocateDirect((int) (floats * 4)).order(ByteOrder.nativeOrder());
    while (buf.remaining() >= 8) {
      buf.putLong(0x3f8000003f800000L); // 1.0f pairs: pages really exist, and the sum is checkable
    }
    buf.clear();
    try (OrtSession.SessionOptions so = new OrtSession.SessionOptions()) {
      so.setSessionLogLevel(OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR);
      if (threads > 0) {
        so.setIntraOpNumThreads(threads);
      }
      session = env.createSession(model(floats).toByteArray(), so);
      input = OnnxTensor.createTensor(env, buf.asFloatBuffer(), new long[] {floats});
    } catch (OrtException e) {
      throw new IllegalStateException("bandwidth probe failed: " + e.getMessage(), e);
    }
  }

  /** Bytes the probe keeps resident (its buffer). */
  public long bytes() {
    return floats * 4;
  }

  /** GB/s of one read of the whole buffer. */
  public double read() {
    long c0 = System.nanoTime();
    try (OrtSession.Result r = session.run(Map.of("x", input))) {
      return floats * 4.0 / (System.nanoTime() - c0);
    } catch (OrtException e) {
      throw new IllegalStateException("bandwidth probe failed: " + e.getMessage(), e);
    }
  }

  private static ModelProto model(long n) {
    ValueInfoProto in = ValueInfoProto.newBuilder().setName("x").setType(TypeProto.newBuilder().setTensorType(
        TypeProto.Tensor.newBuilder().setElemType(TensorProto.DataType.FLOAT_VALUE)
            .setShape(TensorShapeProto.newBuilder().addDim(TensorShapeProto.Dimension.newBuilder().setDimValue(n))))).build();
    ValueInfoProto out = ValueInfoProto.newBuilder().setName("y").setType(TypeProto.newBuilder().setTensorType(
        TypeProto.Tensor.newBuilder().setElemType(TensorProto.DataType.FLOAT_VALUE))).build();
    return ModelProto.newBuilder().setIrVersion(8)
        .addOpsetImport(OperatorSetIdProto.newBuilder().setDomain("").setVersion(17))
        .setGraph(GraphProto.newBuilder().setName("bandwidth").addInput(in).addOutput(out)
            .addNode(NodeProto.newBuilder().setOpType("ReduceSum").addInput("x").addOutput("y")
                .addAttribute(AttributeProto.newBuilder().setName("keepdims")
                    .setType(AttributeProto.AttributeType.INT).setI(0))))
        .build();
  }

  @Override
  public void close() {
    try {
      input.close();
      session.close();
    } catch (OrtException e) {
      throw new IllegalStateException("closing the bandwidth probe: " + e.getMessage(), e);
    }
  }
}
