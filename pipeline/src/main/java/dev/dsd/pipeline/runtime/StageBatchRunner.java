package dev.dsd.pipeline.runtime;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.dsd.pipeline.model.ModelConfig;
import dev.dsd.pipeline.model.ModelFormatException;
import dev.dsd.pipeline.model.WeightSource;
import dev.dsd.pipeline.onnx.ShardGraphBuilder;
import dev.dsd.pipeline.onnx.StageBatchGraphBuilder;
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
import java.util.concurrent.atomic.LongAdder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Runs one shard (layers {@code [from, to)}) for several sessions in one ONNX Runtime call: the
 * rounds a pipeline stage has waiting when it becomes free. Rows are ragged: each has its own
 * cached length and its own number of new tokens; shorter rows are padded at the end and masked.
 *
 * <p>Each session's cache ({@link StageKv}) stays in its own pages. A call copies the valid
 * part of each row's cache into one padded past per layer (direct buffers, reused across calls),
 * which ORT reads in place, and appends only the new positions back: per row and call that is the
 * same one copy of the cache the per-session runner makes when it concatenates past and new keys
 * inside its graph. {@link #gatherNanos()} and {@link #callNanos()} measure what the copy costs.
 *
 * <p>Calls run one at a time; sessions may be opened, truncated and closed from any thread.
 */
public final class StageBatchRunner implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(StageBatchRunner.class);

  /**
   * One session's share of a call: its cache and its new positions, token ids on the first shard
   * ({@code hidden} null) or {@code n} hidden-state rows [n, H] on later shards ({@code tokens} null).
   * {@code parents} null: the new positions are a chain; else they form a token tree
   * ({@link TreeShape}): each attends to the cache, its ancestors and itself, at rotary position
   * cached length + depth.
   */
  public record Row(StageKv kv, int[] tokens, float[] hidden, int n, int[] parents) {
    public static Row tokens(StageKv kv, int[] tokens) {
      return new Row(kv, tokens, null, tokens.length, null);
    }

    public static Row hidden(StageKv kv, float[] hidden, int n) {
      return new Row(kv, null, hidden, n, null);
    }

    /** The same positions as a token tree. */
    public Row withTree(int[] parents) {
      return new Row(kv, tokens, hidden, n, parents);
    }
  }

  private final LayerRange range;
  private final ModelConfig config;
  private final int from;
  private final int to;
  private final OrtEnvironment env = OrtEnvironment.getEnvironment();
  private final OrtSession session;
  private final OrtWeights weights;
  private final ShardSessions sessions;
  private final String[] outputNames;
  private final Object lock = new Object();
  private final FloatBuffer[] scratchKeys;
  private final FloatBuffer[] scratchValues;
  private final LongAdder gatherNanos = new LongAdder();
  private final LongAdder callNanos = new LongAdder();

  public StageBatchRunner(ModelConfig config, WeightSource source, int from, int to, RunnerOptions options) {
    this(config, source, from, to, options, null);
  }

  /**
   * As above; {@code modelId} keys the run-format weights cache in {@code options.cacheDir()} (null
   * when there is none).
   */
  public StageBatchRunner(ModelConfig config, WeightSource source, int from, int to, RunnerOptions options,
      String modelId) {
    this.range = new LayerRange(config, from, to);
    this.config = config;
    this.from = from;
    this.to = to;
    long t0 = System.nanoTime();
    OrtWeights w = null;
    try {
      w = OrtWeights.load(env, config, source, from, to, options, modelId);
      session = w.session(StageBatchGraphBuilder.build(config, from, to, options.weights()), options);
    } catch (OrtException e) {
      if (w != null) {
        w.close();
      }
      throw new ModelFormatException("ONNX Runtime refused the batched graph of layers [" + from + ", " + to + "): "
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
    outs.add(range.isLast() ? StageBatchGraphBuilder.LOGITS : StageBatchGraphBuilder.HIDDEN_OUT);
    for (int i = from; i < to; i++) {
      outs.add(StageBatchGraphBuilder.newKey(i));
      outs.add(StageBatchGraphBuilder.newValue(i));
    }
    outputNames = outs.toArray(new String[0]);
    scratchKeys = new FloatBuffer[to - from];
    scratchValues = new FloatBuffer[to - from];
    log.info("stage batch runner ready layers=[{},{}) of {} hidden={} kvBytesPerToken={} loadMs={}", from, to,
        config.numLayers(), config.hiddenSize(), bytesPerToken, (System.nanoTime() - t0) / 1_000_000);
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

  /** The open sessions and the limits they count against (count, KV budget, idle timeout). */
  public ShardSessions sessions() {
    return sessions;
  }

  /** Time spent copying caches into the padded past, over all calls. */
  public long gatherNanos() {
    return gatherNanos.sum();
  }

  /** Time spent in calls, copies included. */
  public long callNanos() {
    return callNanos.sum();
  }

  /**
   * Opens a session that may hold up to {@code maxTokens} positions; memory and budget are taken as
   * it fills them ({@link StageKv}).
   */
  public StageKv openSession(String id, String owner, int maxTokens) {
    if (maxTokens < 1 || maxTokens > config.maxPositionEmbeddings()) {
      throw new RuntimeLimitException("session " + id + ": " + maxTokens + " tokens requested, the context holds "
          + config.maxPositionEmbeddings());
    }
    ShardSession ticket = sessions.open(id, owner, maxTokens);
    try {
      return new StageKv(ticket, sessions, to - from, config.kvDim(), config.numKvHeads(), lock);
    } catch (RuntimeException e) {
      ticket.close();
      throw e;
    }
  }

  /**
   * Runs every row's new positions after its cached ones, all rows in one call, and returns per row
   * its {@code n * range.outputWidth()} outputs (row-major). A session appears at most once per call.
   */
  public float[][] forward(List<Row> rows) {
    synchronized (lock) {
      check(rows);
      long t0 = System.nanoTime();
      try {
        return run(rows);
      } finally {
        callNanos.add(System.nanoTime() - t0);
      }
    }
  }

  private void check(List<Row> rows) {
    if (rows.isEmpty()) {
      throw new IllegalArgumentException("a call needs at least one row");
    }
    Map<StageKv, Boolean> seen = new IdentityHashMap<>();
    int h = config.hiddenSize();
    for (Row r : rows) {
      StageKv kv = r.kv();
      kv.checkOpen();
      if (seen.put(kv, Boolean.TRUE) != null) {
        throw new IllegalArgumentException("session " + kv.id() + " appears twice in one call");
      }
      if (r.n() < 1) {
        throw new IllegalArgumentException("session " + kv.id() + ": a row needs at least one new position");
      }
      if (range.isFirst()) {
        if (r.tokens() == null || r.tokens().length != r.n()) {
          throw new IllegalArgumentException("layers [0, " + to + ") take token ids");
        }
        for (int t : r.tokens()) {
          if (t < 0 || t >= config.vocabSize()) {
            throw new IllegalArgumentException("token id " + t + " is outside the vocabulary [0, " + config.vocabSize()
                + ")");
          }
        }
      } else if (r.hidden() == null || r.hidden().length != (long) r.n() * h) {
        throw new IllegalArgumentException("layers [" + from + ", " + to + ") take hidden states [" + r.n() + ", " + h
            + "]");
      }
      if (r.parents() != null) {
        if (r.parents().length != r.n()) {
          throw new IllegalArgumentException("session " + kv.id() + ": " + r.parents().length + " parents for " + r.n()
              + " positions");
        }
        String bad = TreeShape.problem(r.parents(), TreeShape.MAX_NODES, TreeShape.MAX_DEPTH);
        if (bad != null) {
          throw new IllegalArgumentException("session " + kv.id() + ": " + bad);
        }
      }
      if (kv.length + r.n() > kv.maxTokens()) {
        throw new RuntimeLimitException("session " + kv.id() + ": " + kv.length + " cached + " + r.n()
            + " new tokens exceed its " + kv.maxTokens() + "-token limit");
      }
    }
    for (Row r : rows) { // after every check: a refused call leaves every session as it was
      try {
        r.kv().ensure(r.kv().length + r.n());
      } catch (OutOfMemoryError e) {
        throw new RuntimeLimitException("session " + r.kv().id() + ": no memory for " + (r.kv().length + r.n())
            + " cached tokens");
      }
    }
  }

  private float[][] run(List<Row> rows) {
    int b = rows.size();
    int t = 0;
    int p = 1; // never an empty past: one masked position keeps every MatMul's inner size non-zero
    for (Row r : rows) {
      t = Math.max(t, r.n());
      p = Math.max(p, r.kv().length);
    }
    int s = p + t;
    int kvH = config.numKvHeads();
    int hd = config.headDim();
    int h = config.hiddenSize();
    int layers = to - from;
    long[] ids = range.isFirst() ? new long[b * t] : null;
    float[] hidden = range.isFirst() ? null : new float[b * t * h];
    long[] positions = new long[b * t];
    float[] mask = new float[b * t * s];
    Arrays.fill(mask, Float.NEGATIVE_INFINITY);
    for (int row = 0; row < b; row++) {
      Row r = rows.get(row);
      int len = r.kv().length;
      if (hidden != null) {
        System.arraycopy(r.hidden(), 0, hidden, row * t * h, r.n() * h);
      }
      int[] depth = r.parents() == null ? null : TreeShape.depths(r.parents());
      for (int i = 0; i < t; i++) {
        int at = row * t + i;
        // padded positions sit past the row's end; their outputs are dropped and nothing sees them
        if (ids != null) {
          ids[at] = i < r.n() ? r.tokens()[i] : 0;
        }
        int m = at * s;
        Arrays.fill(mask, m, m + len, 0f);
        if (depth != null && i < r.n()) { // a tree node sees its own path only
          positions[at] = Math.min(len + depth[i], config.maxPositionEmbeddings() - 1);
          TreeShape.openAncestors(mask, m, p, r.parents(), i);
        } else {
          positions[at] = Math.min(len + i, config.maxPositionEmbeddings() - 1);
          Arrays.fill(mask, m + p, m + p + Math.min(i, r.n() - 1) + 1, 0f);
        }
      }
    }
    List<OnnxTensor> temp = new ArrayList<>();
    OrtSession.Result result = null;
    try {
      Map<String, OnnxTensor> in = new HashMap<>();
      if (ids != null) {
        in.put(StageBatchGraphBuilder.INPUT_IDS, track(temp, OnnxTensor.createTensor(env, LongBuffer.wrap(ids),
            new long[] {b, t})));
      } else {
        in.put(StageBatchGraphBuilder.HIDDEN_IN, track(temp, OnnxTensor.createTensor(env, FloatBuffer.wrap(hidden),
            new long[] {(long) b * t, h})));
      }
      in.put(StageBatchGraphBuilder.POSITIONS, track(temp, OnnxTensor.createTensor(env, LongBuffer.wrap(positions),
          new long[] {b, t})));
      in.put(StageBatchGraphBuilder.MASK, track(temp, OnnxTensor.createTensor(env, FloatBuffer.wrap(mask),
          new long[] {b, t, s})));
      long[] pastShape = {b, kvH, p, hd};
      long g0 = System.nanoTime();
      for (int l = 0; l < layers; l++) {
        scratchKeys[l] = gather(scratchKeys[l], rows, l, true, p);
        scratchValues[l] = gather(scratchValues[l], rows, l, false, p);
      }
      gatherNanos.add(System.nanoTime() - g0);
      int n = b * kvH * p * hd;
      for (int l = 0; l < layers; l++) {
        in.put(ShardGraphBuilder.pastKey(from + l), track(temp, OnnxTensor.createTensor(env, scratchKeys[l].slice(0, n),
            pastShape)));
        in.put(ShardGraphBuilder.pastValue(from + l), track(temp, OnnxTensor.createTensor(env,
            scratchValues[l].slice(0, n), pastShape)));
      }
      result = session.run(in);
      FloatBuffer out = ((OnnxTensor) result.get(outputNames[0]).orElseThrow()).getFloatBuffer();
      int width = range.outputWidth();
      float[][] split = new float[b][];
      for (int row = 0; row < b; row++) {
        split[row] = new float[rows.get(row).n() * width];
        out.get(row * t * width, split[row]);
      }
      long s0 = System.nanoTime();
      for (int l = 0; l < layers; l++) {
        scatter(result, outputNames[1 + 2 * l], rows, l, true, t);
        scatter(result, outputNames[2 + 2 * l], rows, l, false, t);
      }
      gatherNanos.add(System.nanoTime() - s0);
      for (Row r : rows) {
        r.kv().length += r.n();
      }
      return split;
    } catch (OrtException e) {
      throw new IllegalStateException("ONNX Runtime failed on layers [" + from + ", " + to + ") for " + b + " rows: "
          + e.getMessage(), e);
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

  /** Copies each row's valid cache of hosted layer {@code l} into [B, kvH, p, hd]; padding is masked. */
  private FloatBuffer gather(FloatBuffer scratch, List<Row> rows, int l, boolean keys, int p) {
    int kvH = config.numKvHeads();
    int hd = config.headDim();
    int need = rows.size() * kvH * p * hd;
    if (scratch == null || scratch.capacity() < need) {
      int cap = Math.max(need, scratch == null ? 0 : (int) Math.min(Integer.MAX_VALUE / 2, 2L * scratch.capacity()));
      scratch = ByteBuffer.allocateDirect(cap * Float.BYTES).order(ByteOrder.nativeOrder()).asFloatBuffer();
    }
    for (int row = 0; row < rows.size(); row++) {
      StageKv kv = rows.get(row).kv();
      float[][] pages = keys ? kv.keys[l] : kv.values[l];
      for (int head = 0; head < kvH; head++) {
        for (int at = 0; at < kv.length; at += StageKv.PAGE) {
          int run = Math.min(StageKv.PAGE, kv.length - at);
          scratch.put(((row * kvH + head) * p + at) * hd, pages[at / StageKv.PAGE], head * StageKv.PAGE * hd, run * hd);
        }
      }
    }
    return scratch;
  }

  /** Appends each row's new keys (or values) of hosted layer {@code l}, [B, kvH, t, hd], to its cache. */
  private void scatter(OrtSession.Result result, String name, List<Row> rows, int l, boolean keys, int t) {
    FloatBuffer fresh = ((OnnxTensor) result.get(name).orElseThrow()).getFloatBuffer();
    int kvH = config.numKvHeads();
    int hd = config.headDim();
    for (int row = 0; row < rows.size(); row++) {
      StageKv kv = rows.get(row).kv();
      float[][] pages = keys ? kv.keys[l] : kv.values[l];
      int n = rows.get(row).n();
      for (int head = 0; head < kvH; head++) {
        for (int i = 0; i < n; ) { // the new positions, page by page
          int pos = kv.length + i;
          int run = Math.min(n - i, StageKv.PAGE - pos % StageKv.PAGE);
          fresh.get(((row * kvH + head) * t + i) * hd, pages[pos / StageKv.PAGE],
              (head * StageKv.PAGE + pos % StageKv.PAGE) * hd, run * hd);
          i += run;
        }
      }
    }
  }

  @Override
  public void close() {
    sessions.closeAll();
    try {
      session.close();
    } catch (OrtException e) {
      log.warn("closing the batched ORT session of layers [{},{}): {}", from, to, e.getMessage());
    }
    weights.close();
  }
}
