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
import dev.dsd.pipeline.onnx.BatchGraphBuilder;
import dev.dsd.pipeline.onnx.RotaryTables;
import dev.dsd.pipeline.onnx.ShardGraphBuilder;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Runs a whole model over several independent sequences in one ONNX Runtime call. Each sequence
 * ({@link BatchSession}) keeps its own cache and length; a pass gathers the caches of its rows into
 * one padded past, masks every row's padding, and appends the new keys and values back to each
 * session. One pass over B rows costs about what one row costs while the model's matrix products
 * are bound by reading weights, which is the case for a draft model decoding a token at a time.
 *
 * <p>Passes run one at a time; sessions may be opened, truncated and closed from any thread.
 */
public final class BatchRunner implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(BatchRunner.class);

  /** One sequence's share of a pass: its session and the new tokens to run at its next positions. */
  public record Row(BatchSession session, int[] tokens) {}

  private final ModelConfig config;
  private final RunnerOptions options;
  private final OrtEnvironment env = OrtEnvironment.getEnvironment();
  private final OrtSession session;
  private final OrtWeights weights;
  private final Object lock = new Object();
  private final Map<String, BatchSession> open = new HashMap<>();
  private final long bytesPerToken;
  private final String[] outputNames;
  private long reserved;
  // direct buffers ORT reads the gathered caches from in place, grown as batches and contexts grow
  private final FloatBuffer[] scratchKeys;
  private final FloatBuffer[] scratchValues;

  public BatchRunner(ModelConfig config, WeightSource source, RunnerOptions options) {
    this(config, source, options, null);
  }

  /** A runner whose run-format weights are cached like {@link ShardRunner}'s (null id: no cache). */
  public BatchRunner(ModelConfig config, WeightSource source, RunnerOptions options, String modelId) {
    this.config = config;
    this.options = options;
    long t0 = System.nanoTime();
    OrtWeights w = null;
    try {
      w = OrtWeights.load(env, config, source, 0, config.numLayers(), options, modelId);
      session = w.session(BatchGraphBuilder.build(config, options.weights()), options);
    } catch (OrtException e) {
      if (w != null) {
        w.close();
      }
      throw new ModelFormatException("ONNX Runtime refused the batched graph: " + e.getMessage(), e);
    } catch (RuntimeException e) {
      if (w != null) {
        w.close();
      }
      throw e;
    }
    this.weights = w;
    int layers = config.numLayers();
    this.bytesPerToken = new LayerRange(config, 0, layers).kvBytesPerToken();
    List<String> outs = new ArrayList<>();
    outs.add(BatchGraphBuilder.LOGITS);
    for (int i = 0; i < layers; i++) {
      outs.add(BatchGraphBuilder.newKey(i));
      outs.add(BatchGraphBuilder.newValue(i));
    }
    outputNames = outs.toArray(new String[0]);
    scratchKeys = new FloatBuffer[layers];
    scratchValues = new FloatBuffer[layers];
    log.info("batch runner ready layers={} hidden={} kvBytesPerToken={} maxSessions={} loadMs={}", layers,
        config.hiddenSize(), bytesPerToken, options.maxSessions(), (System.nanoTime() - t0) / 1_000_000);
  }

  private static FloatBuffer direct(int floats) {
    return ByteBuffer.allocateDirect(floats * Float.BYTES).order(ByteOrder.nativeOrder()).asFloatBuffer();
  }

  public ModelConfig config() {
    return config;
  }

  /** KV bytes one cached position costs (keys and values of every layer, F32). */
  public long bytesPerToken() {
    return bytesPerToken;
  }

  public int sessionCount() {
    synchronized (lock) {
      return open.size();
    }
  }

  public long reservedBytes() {
    synchronized (lock) {
      return reserved;
    }
  }

  /** Opens a sequence that may hold up to {@code maxTokens} positions, reserving their memory now. */
  public BatchSession openSession(String id, int maxTokens) {
    if (maxTokens < 1 || maxTokens > config.maxPositionEmbeddings()) {
      throw new RuntimeLimitException("session " + id + ": " + maxTokens + " tokens requested, the context holds "
          + config.maxPositionEmbeddings());
    }
    long bytes = maxTokens * bytesPerToken;
    synchronized (lock) {
      if (open.containsKey(id)) {
        throw new IllegalArgumentException("session " + id + " is already open");
      }
      if (open.size() >= options.maxSessions()) {
        throw new RuntimeLimitException("too many sessions: " + open.size() + " open, limit " + options.maxSessions());
      }
      if (reserved + bytes > options.kvBudgetBytes()) {
        throw new RuntimeLimitException("KV memory budget exceeded: session " + id + " needs " + bytes + " bytes for "
            + maxTokens + " tokens, " + (options.kvBudgetBytes() - reserved) + " of " + options.kvBudgetBytes()
            + " bytes are free");
      }
      BatchSession s = new BatchSession(id, maxTokens, config.numLayers(), config.kvDim(), bytes, lock, () -> {
        synchronized (lock) {
          if (open.remove(id) != null) {
            reserved -= bytes;
          }
        }
      });
      reserved += bytes;
      open.put(id, s);
      return s;
    }
  }

  /**
   * Runs each row's tokens at its session's next positions, all rows in one pass, and returns per
   * row the logits of its new tokens ({@code tokens.length * vocab}, row-major). Every session
   * appears at most once.
   */
  public float[][] forward(List<Row> rows) {
    synchronized (lock) {
      check(rows);
      return run(rows);
    }
  }

  private void check(List<Row> rows) {
    if (rows.isEmpty()) {
      throw new IllegalArgumentException("a pass needs at least one row");
    }
    Map<BatchSession, Boolean> seen = new IdentityHashMap<>();
    for (Row r : rows) {
      BatchSession s = r.session();
      s.checkOpen();
      if (seen.put(s, Boolean.TRUE) != null) {
        throw new IllegalArgumentException("session " + s.id() + " appears twice in one pass");
      }
      if (r.tokens().length < 1) {
        throw new IllegalArgumentException("session " + s.id() + ": a row needs at least one new token");
      }
      for (int t : r.tokens()) {
        if (t < 0 || t >= config.vocabSize()) {
          throw new IllegalArgumentException("token id " + t + " is outside the vocabulary [0, " + config.vocabSize() + ")");
        }
      }
      if (s.length + r.tokens().length > s.maxTokens()) {
        throw new RuntimeLimitException("session " + s.id() + ": " + s.length + " cached + " + r.tokens().length
            + " new tokens exceed its " + s.maxTokens() + "-token limit");
      }
    }
  }

  private float[][] run(List<Row> rows) {
    int b = rows.size();
    int t = 0;
    int p = 0;
    for (Row r : rows) {
      t = Math.max(t, r.tokens().length);
      p = Math.max(p, r.session().length);
    }
    int s = p + t;
    int kvH = config.numKvHeads();
    int hd = config.headDim();
    int layers = config.numLayers();
    int vocab = config.vocabSize();
    long[] ids = new long[b * t];
    long[] positions = new long[b * t];
    float[] mask = new float[b * t * s];
    Arrays.fill(mask, Float.NEGATIVE_INFINITY);
    for (int row = 0; row < b; row++) {
      int len = rows.get(row).session().length;
      int[] tokens = rows.get(row).tokens();
      for (int i = 0; i < t; i++) {
        int at = row * t + i;
        // padded tokens sit past the row's end; their outputs are dropped, their keys masked
        ids[at] = i < tokens.length ? tokens[i] : 0;
        positions[at] = Math.min(len + i, config.maxPositionEmbeddings() - 1);
        int m = at * s;
        Arrays.fill(mask, m, m + len, 0f);
        Arrays.fill(mask, m + p, m + p + i + 1, 0f);
      }
    }
    List<OnnxTensor> temp = new ArrayList<>();
    OrtSession.Result result = null;
    try {
      Map<String, OnnxTensor> in = new HashMap<>();
      in.put(BatchGraphBuilder.INPUT_IDS, track(temp, OnnxTensor.createTensor(env, LongBuffer.wrap(ids), new long[] {b, t})));
      in.put(BatchGraphBuilder.POSITIONS, track(temp, OnnxTensor.createTensor(env, LongBuffer.wrap(positions),
          new long[] {b, t})));
      in.put(BatchGraphBuilder.MASK, track(temp, OnnxTensor.createTensor(env, FloatBuffer.wrap(mask), new long[] {b, t, s})));
      long[] pastShape = {b, kvH, p, hd};
      for (int l = 0; l < layers; l++) {
        scratchKeys[l] = gather(scratchKeys[l], rows, l, true, p);
        scratchValues[l] = gather(scratchValues[l], rows, l, false, p);
        int n = b * kvH * p * hd;
        in.put(ShardGraphBuilder.pastKey(l), track(temp, OnnxTensor.createTensor(env, scratchKeys[l].slice(0, n), pastShape)));
        in.put(ShardGraphBuilder.pastValue(l), track(temp, OnnxTensor.createTensor(env, scratchValues[l].slice(0, n),
            pastShape)));
      }
      result = session.run(in);
      float[] logits = floats(result, outputNames[0]);
      float[][] out = new float[b][];
      for (int row = 0; row < b; row++) {
        int n = rows.get(row).tokens().length;
        out[row] = Arrays.copyOfRange(logits, row * t * vocab, (row * t + n) * vocab);
      }
      for (int l = 0; l < layers; l++) {
        scatter(floats(result, outputNames[1 + 2 * l]), rows, l, true, t);
        scatter(floats(result, outputNames[2 + 2 * l]), rows, l, false, t);
      }
      for (Row r : rows) {
        r.session().length += r.tokens().length;
      }
      return out;
    } catch (OrtException e) {
      throw new IllegalStateException("ONNX Runtime failed on a batch of " + b + " rows: " + e.getMessage(), e);
    } finally {
      if (result != null) {
        result.close();
      }
      temp.forEach(OnnxTensor::close);
    }
  }

  private static OnnxTensor track(List<OnnxTensor> temp, OnnxTensor t) {
    temp.add(t);
    return t;
  }

  private static float[] floats(OrtSession.Result result, String name) {
    FloatBuffer buf = ((OnnxTensor) result.get(name).orElseThrow()).getFloatBuffer();
    float[] out = new float[buf.remaining()];
    buf.get(out);
    return out;
  }

  /** Copies each row's valid cache of layer {@code l} into [B, kvH, p, hd]; padding keeps old values, masked. */
  private FloatBuffer gather(FloatBuffer scratch, List<Row> rows, int l, boolean keys, int p) {
    int kvH = config.numKvHeads();
    int hd = config.headDim();
    int need = rows.size() * kvH * p * hd;
    if (scratch == null || scratch.capacity() < need) {
      scratch = direct(Math.max(need, scratch == null ? 0 : scratch.capacity() * 2));
    }
    for (int row = 0; row < rows.size(); row++) {
      BatchSession s = rows.get(row).session();
      float[] cache = keys ? s.keys[l] : s.values[l];
      int len = s.length;
      for (int h = 0; h < kvH; h++) {
        scratch.put(((row * kvH + h) * p) * hd, cache, h * s.maxTokens() * hd, len * hd);
      }
    }
    return scratch;
  }

  /** Appends each row's new keys (or values) of layer {@code l}, [B, kvH, t, hd], to its cache. */
  private void scatter(float[] fresh, List<Row> rows, int l, boolean keys, int t) {
    int kvH = config.numKvHeads();
    int hd = config.headDim();
    for (int row = 0; row < rows.size(); row++) {
      BatchSession s = rows.get(row).session();
      float[] cache = keys ? s.keys[l] : s.values[l];
      int n = rows.get(row).tokens().length;
      for (int h = 0; h < kvH; h++) {
        System.arraycopy(fresh, ((row * kvH + h) * t) * hd, cache, (h * s.maxTokens() + s.length) * hd, n * hd);
      }
    }
  }

  @Override
  public void close() {
    synchronized (lock) {
      List.copyOf(open.values()).forEach(BatchSession::close);
    }
    try {
      session.close();
    } catch (OrtException e) {
      log.warn("closing the batched ORT session: {}", e.getMessage());
    }
    weights.close();
  }
}
