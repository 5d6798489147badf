package dev.dsd.pipeline.runtime;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxTensorLike;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtLoggingLevel;
import ai.onnxruntime.OrtSession;
import dev.dsd.pipeline.checkpoint.TensorNames;
import dev.dsd.pipeline.model.ModelConfig;
import dev.dsd.pipeline.model.ModelFormatException;
import dev.dsd.pipeline.model.WeightSource;
import dev.dsd.pipeline.onnx.RotaryTables;
import dev.dsd.pipeline.onnx.ShardGraphBuilder;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The weights of layers {@code [from, to)} (plus embeddings/head where the range needs them) and
 * the rotary tables as ONNX Runtime tensors over direct buffers, handed to a graph as external
 * initializers so the graph itself stays small. Shared by the per-session and the batched runner;
 * the tensors live as long as the session that uses them.
 */
final class OrtWeights implements AutoCloseable {
  private final OrtEnvironment env;
  private final List<OnnxTensor> tensors = new ArrayList<>();
  private final Map<String, OnnxTensorLike> initializers = new HashMap<>();

  private OrtWeights(OrtEnvironment env) {
    this.env = env;
  }

  /** Reads and shape-checks every tensor of the range; a mismatch names the tensor. */
  static OrtWeights load(OrtEnvironment env, ModelConfig config, WeightSource source, int from, int to)
      throws OrtException {
    OrtWeights w = new OrtWeights(env);
    try {
      for (Map.Entry<String, long[]> e : TensorNames.forShard(config, from, to).entrySet()) {
        long[] actual = source.shape(e.getKey());
        if (!Arrays.equals(actual, e.getValue())) {
          throw new ModelFormatException("tensor " + e.getKey() + " has shape " + Arrays.toString(actual)
              + " but the config implies " + Arrays.toString(e.getValue()));
        }
        w.initializers.put(e.getKey(), w.tensor(source.tensor(e.getKey()), e.getValue()));
      }
      long[] ropeShape = {config.maxPositionEmbeddings(), config.headDim() / 2};
      w.initializers.put(ShardGraphBuilder.ROPE_COS, w.tensor(RotaryTables.table(config, false), ropeShape));
      w.initializers.put(ShardGraphBuilder.ROPE_SIN, w.tensor(RotaryTables.table(config, true), ropeShape));
      return w;
    } catch (OrtException | RuntimeException e) {
      w.close();
      throw e;
    }
  }

  /** A constant tensor owned (and closed) with the weights. */
  OnnxTensor tensor(float[] data, long[] shape) throws OrtException {
    FloatBuffer buf = ByteBuffer.allocateDirect(data.length * Float.BYTES).order(ByteOrder.nativeOrder()).asFloatBuffer();
    buf.put(data).rewind();
    OnnxTensor t = OnnxTensor.createTensor(env, buf, shape);
    tensors.add(t);
    return t;
  }

  /** A session of {@code graph} over these weights, with the runners' common options. */
  OrtSession session(byte[] graph, RunnerOptions options) throws OrtException {
    try (OrtSession.SessionOptions so = new OrtSession.SessionOptions()) {
      so.setSessionLogLevel(OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR);
      so.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
      if (options.intraOpThreads() > 0) {
        so.setIntraOpNumThreads(options.intraOpThreads());
      }
      so.addExternalInitializers(initializers);
      return env.createSession(graph, so);
    }
  }

  @Override
  public void close() {
    tensors.forEach(OnnxTensor::close);
  }
}
