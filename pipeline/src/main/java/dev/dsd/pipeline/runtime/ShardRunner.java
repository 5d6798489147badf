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
import dev.dsd.pipeline.model.WeightFormat;
import dev.dsd.pipeline.model.WeightSource;
import dev.dsd.pipeline.onnx.RotaryTables;
import dev.dsd.pipeline.onnx.ShardGraphBuilder;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Runs one shard (layers {@code [from, to)}) on ONNX Runtime: one ORT session for the shard, many
 * inference sessions ({@link ShardSession}) each with its own KV cache.
 *
 * <p>A call processes T >= 1 new tokens at positions {@code length .. length+T-1} of its session:
 * T = 1 is ordinary decoding, T = k+1 verifies k draft tokens in one pass. The first shard takes
 * token ids, later shards take the previous shard's hidden states [T, H]; the last shard returns
 * logits [T, V], others hidden states [T, H].
 */
public final class ShardRunner implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(ShardRunner.class);

  private final LayerRange range;
  private final ModelConfig config;
  private final int from;
  private final int to;
  private final OrtEnvironment env = OrtEnvironment.getEnvironment();
  private final OrtSession session;
  private final OrtWeights weights;
  private final OnnxTensor emptyPast;
  private final ShardSessions sessions;
  private final String[] outputNames;
  private final WeightFormat format;

  public ShardRunner(ModelConfig config, WeightSource source, int from, int to, RunnerOptions options) {
    this(config, source, from, to, options, null);
  }

  /**
   * A runner whose run-format weights are cached under {@code options.cacheDir()} keyed by
   * {@code modelId} (the checkpoint's hash), layers and format; a null id never uses the cache.
   */
  public ShardRunner(ModelConfig config, WeightSource source, int from, int to, RunnerOptions options, String modelId) {
    this.range = new LayerRange(config, from, to);
    this.config = config;
    this.from = from;
    this.to = to;
    long t0 = System.nanoTime();
    OrtWeights w = null;
    try {
      w = OrtWeights.load(env, config, source, from, to, options, modelId);
      emptyPast = w.tensor(new float[0], new long[] {config.numKvHeads(), 0, config.headDim()});
      session = w.session(ShardGraphBuilder.build(config, from, to, options.weights()), options);
    } catch (OrtException e) {
      if (w != null) {
        w.close();
      }
      throw new ModelFormatException("ONNX Runtime refused the graph of layers [" + from + ", " + to + "): "
          + e.getMessage(), e);
    } catch (RuntimeException e) {
      if (w != null) {
        w.close();
      }
      throw e;
    }
    this.weights = w;
    long bytesPerToken = range.kvBytesPerToken();
    this.sessions = new ShardSessions(options, bytesPerToken);
    List<String> outs = new ArrayList<>();
    outs.add(range.isLast() ? ShardGraphBuilder.LOGITS : ShardGraphBuilder.HIDDEN_OUT);
    for (int i = from; i < to; i++) {
      outs.add(ShardGraphBuilder.presentKey(i));
      outs.add(ShardGraphBuilder.presentValue(i));
    }
    outputNames = outs.toArray(new String[0]);
    this.format = options.weights();
    log.info("shard ready layers=[{},{}) of {} hidden={} format={} weightBytes={} kvBytesPerToken={} loadMs={}", from,
        to, config.numLayers(), config.hiddenSize(), format.id(), w.bytes(), bytesPerToken,
        (System.nanoTime() - t0) / 1_000_000);
  }

  /** The format the hosted weights are kept in. */
  public WeightFormat weightFormat() {
    return format;
  }

  /** Bytes of the hosted weights in their run format. */
  public long weightBytes() {
    return weights.bytes();
  }

  /** Bytes of weights one call reads, whatever its token count (see {@link dev.dsd.pipeline.onnx.RunTensors}). */
  public long weightBytesReadPerCall() {
    return weights.bytesReadPerCall();
  }

  public ModelConfig config() {
    return config;
  }

  public int from() {
    return from;
  }

  public int to() {
    return to;
  }

  /** The layers this runner hosts, and whether they take tokens or return logits. */
  public LayerRange range() {
    return range;
  }

  public ShardSessions sessions() {
    return sessions;
  }

  /**
   * Opens an inference session that may hold up to {@code maxTokens} tokens; its KV memory is
   * charged to the budget as calls fill positions.
   */
  public ShardSession openSession(String id, String owner, int maxTokens) {
    if (maxTokens < 1 || maxTokens > config.maxPositionEmbeddings()) {
      throw new RuntimeLimitException("session " + id + ": " + maxTokens + " tokens requested, the context holds "
          + config.maxPositionEmbeddings());
    }
    return sessions.open(id, owner, maxTokens);
  }

  /** First shard: runs token ids through the hosted layers. */
  public float[] forwardTokens(ShardSession s, int[] tokens) {
    if (!range.isFirst()) {
      throw new IllegalStateException("layers [" + from + ", " + to + ") take hidden states, not token ids");
    }
    for (int t : tokens) {
      if (t < 0 || t >= config.vocabSize()) {
        throw new IllegalArgumentException("token id " + t + " is outside the vocabulary [0, " + config.vocabSize() + ")");
      }
    }
    long[] ids = Arrays.stream(tokens).asLongStream().toArray();
    return run(s, tokens.length, ShardGraphBuilder.INPUT_IDS, () -> OnnxTensor.createTensor(env, LongBuffer.wrap(ids),
        new long[] {ids.length}), -1, null);
  }

  /**
   * First shard: runs token ids as (part of) a token tree growing on the cache's first {@code base}
   * positions ({@link TreeShape}). {@code parents} covers every position from {@code base} on, the
   * cached ones first and then the new ones, relative to {@code base}; a new position attends to
   * {@code [0, base)}, its ancestors and itself, at rotary position base + depth. A drafter grows a
   * tree level by level this way, then truncates the cache back to {@code base}.
   */
  public float[] forwardTree(ShardSession s, int[] tokens, int base, int[] parents) {
    if (!range.isFirst()) {
      throw new IllegalStateException("layers [" + from + ", " + to + ") take hidden states, not token ids");
    }
    if (base < 0 || base > s.length() || parents.length != s.length() - base + tokens.length) {
      throw new IllegalArgumentException("a tree on " + base + " of " + s.length() + " cached positions needs "
          + (s.length() - Math.max(0, base) + tokens.length) + " parents, got " + parents.length);
    }
    String bad = TreeShape.problem(parents, TreeShape.MAX_NODES, TreeShape.MAX_DEPTH);
    if (bad != null) {
      throw new IllegalArgumentException(bad);
    }
    for (int t : tokens) {
      if (t < 0 || t >= config.vocabSize()) {
        throw new IllegalArgumentException("token id " + t + " is outside the vocabulary [0, " + config.vocabSize() + ")");
      }
    }
    long[] ids = Arrays.stream(tokens).asLongStream().toArray();
    return run(s, tokens.length, ShardGraphBuilder.INPUT_IDS, () -> OnnxTensor.createTensor(env, LongBuffer.wrap(ids),
        new long[] {ids.length}), base, parents);
  }

  /** Later shards: runs hidden states [t, H] (row-major) through the hosted layers. */
  public float[] forwardHidden(ShardSession s, float[] hidden, int t) {
    if (range.isFirst()) {
      throw new IllegalStateException("layers [0, " + to + ") take token ids, not hidden states");
    }
    if (t < 1 || hidden.length != (long) t * config.hiddenSize()) {
      throw new IllegalArgumentException("hidden states of " + hidden.length + " values are not " + t + " x "
          + config.hiddenSize());
    }
    for (float f : hidden) {
      if (!Float.isFinite(f)) {
        throw new IllegalArgumentException("hidden states contain NaN or infinity");
      }
    }
    return run(s, t, ShardGraphBuilder.HIDDEN_IN, () -> OnnxTensor.createTensor(env, FloatBuffer.wrap(hidden),
        new long[] {t, config.hiddenSize()}), -1, null);
  }

  private interface InputMaker {
    OnnxTensor make() throws OrtException;
  }

  /** {@code parents} null: a chain after the cache; else a tree on {@code base} (see {@link #forwardTree}). */
  private float[] run(ShardSession s, int t, String inputName, InputMaker input, int base, int[] parents) {
    s.lock.lock();
    List<OnnxTensor> temp = new ArrayList<>();
    OrtSession.Result result = null;
    try {
      s.checkOpen();
      if (t < 1) {
        throw new IllegalArgumentException("a call needs at least one new token");
      }
      int past = s.length();
      if (past + t > s.maxTokens()) {
        throw new RuntimeLimitException("session " + s.id() + ": " + past + " cached + " + t + " new tokens exceed its "
            + s.maxTokens() + "-token limit");
      }
      int total = past + t;
      sessions.charge(s, total); // before anything runs: a refused call leaves the session as it was
      long[] positions = new long[t];
      float[] mask = new float[t * total];
      if (parents != null && parents.length != past - base + t) {
        throw new IllegalArgumentException("the cache changed under a tree call"); // checked by forwardTree
      }
      int[] depth = parents == null ? null : TreeShape.depths(parents);
      for (int i = 0; i < t; i++) {
        if (depth == null) {
          positions[i] = past + i;
          for (int j = past + i + 1; j < total; j++) {
            mask[i * total + j] = Float.NEGATIVE_INFINITY;
          }
        } else {
          int k = past - base + i; // index among the tree's positions
          positions[i] = Math.min(base + depth[k], config.maxPositionEmbeddings() - 1);
          java.util.Arrays.fill(mask, i * total + base, (i + 1) * total, Float.NEGATIVE_INFINITY);
          TreeShape.openAncestors(mask, i * total, base, parents, k);
        }
      }
      Map<String, OnnxTensor> in = new HashMap<>();
      OnnxTensor x = input.make();
      temp.add(x);
      in.put(inputName, x);
      OnnxTensor pos = OnnxTensor.createTensor(env, LongBuffer.wrap(positions), new long[] {t});
      OnnxTensor m = OnnxTensor.createTensor(env, FloatBuffer.wrap(mask), new long[] {t, total});
      OnnxTensor pl = OnnxTensor.createTensor(env, LongBuffer.wrap(new long[] {past}), new long[] {1});
      temp.addAll(List.of(pos, m, pl));
      in.put(ShardGraphBuilder.POSITIONS, pos);
      in.put(ShardGraphBuilder.MASK, m);
      in.put(ShardGraphBuilder.PAST_LEN, pl);
      int layers = to - from;
      for (int l = 0; l < layers; l++) {
        in.put(ShardGraphBuilder.pastKey(from + l), s.pastKeys == null ? emptyPast : s.pastKeys[l]);
        in.put(ShardGraphBuilder.pastValue(from + l), s.pastValues == null ? emptyPast : s.pastValues[l]);
      }
      result = session.run(in);
      FloatBuffer outBuf = ((OnnxTensor) result.get(outputNames[0]).orElseThrow()).getFloatBuffer();
      float[] out = new float[outBuf.remaining()];
      outBuf.get(out);
      OnnxTensor[] keys = new OnnxTensor[layers];
      OnnxTensor[] values = new OnnxTensor[layers];
      for (int l = 0; l < layers; l++) {
        keys[l] = (OnnxTensor) result.get(ShardGraphBuilder.presentKey(from + l)).orElseThrow();
        values[l] = (OnnxTensor) result.get(ShardGraphBuilder.presentValue(from + l)).orElseThrow();
      }
      s.replaceCache(result, keys, values, total);
      result = null;
      s.touch();
      return out;
    } catch (OrtException e) {
      throw new IllegalStateException("ONNX Runtime failed on layers [" + from + ", " + to + "): " + e.getMessage(), e);
    } finally {
      if (result != null) {
        result.close();
      }
      temp.forEach(OnnxTensor::close);
      s.lock.unlock();
    }
  }

  @Override
  public void close() {
    sessions.closeAll();
    try {
      session.close();
    } catch (OrtException e) {
      log.warn("closing ORT session of layers [{},{}): {}", from, to, e.getMessage());
    }
    weights.close();
  }
}
