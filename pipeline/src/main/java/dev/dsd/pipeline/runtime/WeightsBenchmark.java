package dev.dsd.pipeline.runtime;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtLoggingLevel;
import ai.onnxruntime.OrtSession;
import dev.dsd.pipeline.model.ModelConfig;
import dev.dsd.pipeline.model.WeightFormat;
import dev.dsd.pipeline.model.WeightSource;
import dev.dsd.pipeline.onnx.proto.Onnx.GraphProto;
import dev.dsd.pipeline.onnx.proto.Onnx.ModelProto;
import dev.dsd.pipeline.onnx.proto.Onnx.NodeProto;
import dev.dsd.pipeline.onnx.proto.Onnx.OperatorSetIdProto;
import dev.dsd.pipeline.onnx.proto.Onnx.TensorProto;
import dev.dsd.pipeline.onnx.proto.Onnx.TensorShapeProto;
import dev.dsd.pipeline.onnx.proto.Onnx.TypeProto;
import dev.dsd.pipeline.onnx.proto.Onnx.ValueInfoProto;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * How close a shard comes to the memory-bandwidth limit in each weight format: the median time of a
 * call processing T new tokens on a warm cache, the weight bytes that call reads, and the bandwidth
 * this machine gives a plain sequential read (ORT's ReduceSum over a buffer far larger than the
 * caches, so the same vectorised, multi-threaded code reads it). Peak resident memory is read from
 * {@code /proc/self/status} (VmHWM), reset before each format so every format reports its own.
 */
public final class WeightsBenchmark {
  /** One T of one format. */
  public record Row(int tokens, double medianMs, double tokensPerSecond, double bytesPerToken, double gbPerSecond) {}

  /** One format: its load time (cache build or hit), weight bytes, peak RSS and rows. */
  public record Result(WeightFormat format, double loadMs, long weightBytes, long bytesPerCall, long peakRssBytes,
      List<Row> rows) {}

  private WeightsBenchmark() {}

  public static Result run(ModelConfig c, WeightSource w, String modelId, RunnerOptions options, int warm,
      int[] tokenCounts, int iterations) {
    resetPeakRss();
    int maxT = Arrays.stream(tokenCounts).max().orElse(1);
    SplittableRandom rnd = new SplittableRandom(1);
    int[] prefix = rnd.ints(warm, 0, c.vocabSize()).toArray();
    int[] fresh = rnd.ints(maxT, 0, c.vocabSize()).toArray();
    long t0 = System.nanoTime();
    try (ShardRunner r = new ShardRunner(c, w, 0, c.numLayers(), options, modelId);
        ShardSession s = r.openSession("bench", "bench", warm + maxT)) {
      double loadMs = (System.nanoTime() - t0) / 1e6;
      r.forwardTokens(s, prefix);
      long perCall = r.weightBytesReadPerCall();
      List<Row> rows = new ArrayList<>();
      for (int t : tokenCounts) {
        int[] in = Arrays.copyOf(fresh, t);
        double[] ms = new double[iterations];
        for (int i = -3; i < iterations; i++) { // 3 warm-up calls
          s.truncate(warm);
          long c0 = System.nanoTime();
          r.forwardTokens(s, in);
          if (i >= 0) {
            ms[i] = (System.nanoTime() - c0) / 1e6;
          }
        }
        double med = ShardBenchmark.median(ms);
        rows.add(new Row(t, med, t * 1000.0 / med, (double) perCall / t, perCall / med / 1e6));
      }
      return new Result(options.weights(), loadMs, r.weightBytes(), perCall, peakRss(), rows);
    }
  }

  /** Median GB/s of {@code runs} sequential reads of {@code bytes} by ORT's ReduceSum. */
  public static double bandwidth(long bytes, int runs, int threads) {
    OrtEnvironment env = OrtEnvironment.getEnvironment();
    long n = bytes / 4;
    ValueInfoProto in = ValueInfoProto.newBuilder().setName("x").setType(TypeProto.newBuilder().setTensorType(
        TypeProto.Tensor.newBuilder().setElemType(TensorProto.DataType.FLOAT_VALUE)
            .setShape(TensorShapeProto.newBuilder().addDim(TensorShapeProto.Dimension.newBuilder().setDimValue(n))))).build();
    ValueInfoProto out = ValueInfoProto.newBuilder().setName("y").setType(TypeProto.newBuilder().setTensorType(
        TypeProto.Tensor.newBuilder().setElemType(TensorProto.DataType.FLOAT_VALUE))).build();
    ModelProto m = ModelProto.newBuilder().setIrVersion(8)
        .addOpsetImport(OperatorSetIdProto.newBuilder().setDomain("").setVersion(17))
        .setGraph(GraphProto.newBuilder().setName("bandwidth").addInput(in).addOutput(out)
            .addNode(NodeProto.newBuilder().setOpType("ReduceSum").addInput("x").addOutput("y")
                .addAttribute(dev.dsd.pipeline.onnx.proto.Onnx.AttributeProto.newBuilder().setName("keepdims")
                    .setType(dev.dsd.pipeline.onnx.proto.Onnx.AttributeProto.AttributeType.INT).setI(0))))
        .build();
    ByteBuffer buf = ByteBuffer.allocateDirect((int) Math.min(bytes, Integer.MAX_VALUE - 8)).order(ByteOrder.nativeOrder());
    while (buf.remaining() >= 8) {
      buf.putLong(0x3f8000003f800000L); // 1.0f pairs: pages really exist, and the sum is checkable
    }
    buf.clear();
    try (OrtSession.SessionOptions so = new OrtSession.SessionOptions()) {
      so.setSessionLogLevel(OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR);
      if (threads > 0) {
        so.setIntraOpNumThreads(threads);
      }
      try (OrtSession session = env.createSession(m.toByteArray(), so);
          OnnxTensor x = OnnxTensor.createTensor(env, buf.asFloatBuffer(), new long[] {n})) {
        double[] gbs = new double[runs];
        for (int i = -1; i < runs; i++) {
          long c0 = System.nanoTime();
          try (OrtSession.Result r = session.run(Map.of("x", x))) {
            long ns = System.nanoTime() - c0;
            if (i >= 0) {
              gbs[i] = n * 4.0 / ns;
            }
          }
        }
        return ShardBenchmark.median(gbs);
      }
    } catch (OrtException e) {
      throw new IllegalStateException("bandwidth probe failed: " + e.getMessage(), e);
    }
  }

  /** VmHWM: the most resident memory this process has had since start or the last reset. */
  public static long peakRss() {
    try {
      for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
        if (line.startsWith("VmHWM:")) {
          return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
        }
      }
    } catch (IOException | NumberFormatException e) {
      return -1;
    }
    return -1;
  }

  /** Resets VmHWM to the current RSS (Linux: "5" to clear_refs); a no-op where that is not allowed. */
  public static void resetPeakRss() {
    System.gc();
    try {
      Files.writeString(Path.of("/proc/self/clear_refs"), "5");
    } catch (IOException | UnsupportedOperationException e) {
      // peak then counts from process start
    }
  }
}
