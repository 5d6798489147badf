package dev.dsd.node.stage;

import dev.dsd.node.pipeline.PipelineProtocol;
import dev.dsd.node.pipeline.PipelineService;
import dev.dsd.node.pipeline.PipelineStats;

import dev.dsd.node.wire.MessageStream;
import com.google.protobuf.ByteString;
import dev.dsd.node.pipeline.proto.DType;
import dev.dsd.node.pipeline.proto.Error;
import dev.dsd.node.pipeline.proto.Hop;
import dev.dsd.node.pipeline.proto.OpenSession;
import dev.dsd.node.pipeline.proto.PipelineMessage;
import dev.dsd.node.pipeline.proto.Row;
import dev.dsd.p2p.core.P2pException;
import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.host.NettyHost;
import dev.dsd.p2p.multiaddr.Multiaddr;
import dev.dsd.node.routing.WeightsField;
import dev.dsd.pipeline.model.ModelConfig;
import dev.dsd.pipeline.model.WeightFormat;
import dev.dsd.pipeline.runtime.RuntimeLimitException;
import dev.dsd.pipeline.runtime.StageBatchRunner;
import dev.dsd.pipeline.runtime.StageKv;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.concurrent.atomic.LongAdder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The stage side of {@code /dsd/pipeline/1.0.0}: keeps one KV cache per session for the layers this
 * node serves, runs each round's new positions through them and passes the hidden states straight
 * to the next stage, or, on the last stage, sends the entry a summary of the target's scores.
 *
 * <p>A message that does not fit the session (unknown id, cache overrun, wrong shape, NaN) gets an
 * error reply before anything is changed, so the session stays usable; a failure while computing
 * closes the session. When a neighbour's stream ends the session is closed and the entry is told
 * which peer failed: errors about a later stage travel back up the chain, errors about an earlier
 * one travel down it and the last stage returns them to the entry.
 */
public final class StageServer implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(StageServer.class);

  final PipelineService service;
  private final Fault fault;
  final PeerQuota quota;
  final NettyHost host;
  final HostedShard shard;
  private final Executor pool;
  final Map<String, StageSession> sessions = new ConcurrentHashMap<>();
  final PipelineStats stats;
  final StageScheduler<StageRound> scheduler;
  private static final int TYPICAL_ROUND = 17;
  /** A log line of batching figures every this many stage calls. */
  static final int LOG_EVERY_CALLS = 2000;
  // since the last log line: rows, ONNX Runtime nanos, and nanos of the Java around it (preparing
  // rows, and splitting, encoding and sending results), to see where a stage's time goes under load
  private final LongAdder logRows = new LongAdder();
  private final LongAdder logOrtNanos = new LongAdder();
  private final LongAdder logJavaNanos = new LongAdder();
  private final int[] recent = new int[64];
  private long recentCount;

  public StageServer(PipelineService service, NettyHost host, HostedShard shard, Executor pool, PipelineStats stats,
      Fault fault) {
    this(service, host, shard, pool, stats, fault, StageScheduler.Limits.defaults());
  }

  StageServer(PipelineService service, NettyHost host, HostedShard shard, Executor pool, PipelineStats stats,
      Fault fault, StageScheduler.Limits batchLimits) {
    this.fault = fault;
    this.service = service;
    this.quota = new PeerQuota(PeerQuota.Limits.of(shard.batch().sessions().maxSessions(),
        shard.batch().sessions().kvBudgetBytes()));
    this.scheduler = new StageScheduler<>(batchLimits, pool, this::runBatch);
    this.host = host;
    this.shard = shard;
    this.pool = pool;
    this.stats = stats;
  }

  public HostedShard shard() {
    return shard;
  }

  public int sessionCount() {
    return sessions.size();
  }

  /**
   * Median compute time of recent verification-sized rounds (at most {@link #TYPICAL_ROUND}
   * positions; prompt prefill would skew it), in microseconds; 0 before any. Routers read it.
   */
  public int medianComputeMicros() {
    synchronized (recent) {
      int n = (int) Math.min(recentCount, recent.length);
      if (n == 0) {
        return 0;
      }
      int[] copy = Arrays.copyOf(recent, n);
      Arrays.sort(copy);
      return copy[n / 2];
    }
  }

  void recordCompute(int positions, long nanos) {
    if (positions <= TYPICAL_ROUND) {
      synchronized (recent) {
        recent[(int) (recentCount++ % recent.length)] = (int) Math.min(Integer.MAX_VALUE, nanos / 1000);
      }
    }
  }

  /**
   * Runs one batch the scheduler assembled: each round's cache is rolled back to its keep, all rows
   * go through the layers in one call, and each result goes on to its own session's next hop. A call
   * that fails with several rows is retried row by row, so one session's bad round (or a limit)
   * ends only that session.
   */
  private void runBatch(List<StageRound> batch) {
    long start = System.nanoTime();
    List<StageRound> ready = new ArrayList<>();
    List<StageBatchRunner.Row> rows = new ArrayList<>();
    for (StageRound j : batch) {
      if (!j.session().startCall(j)) {
        continue; // cancelled after the scheduler took it for this call
      }
      try {
        j.session().prepare(j);
        rows.add(j.session().row(j));
        ready.add(j);
      } catch (RuntimeException e) {
        j.session().failed(j, e);
      }
    }
    if (ready.isEmpty()) {
      return;
    }
    long t0 = System.nanoTime();
    float[][] ys;
    try {
      ys = shard.batch().forward(rows);
    } catch (RuntimeException e) {
      if (ready.size() == 1) {
        ready.get(0).session().failed(ready.get(0), e);
      } else {
        log.info("batched call of {} rows failed, running them one by one: {}", ready.size(), e.toString());
        ready.forEach(j -> runBatch(List.of(j)));
      }
      return;
    }
    for (float[] y : ys) { // a faulty stage's delay or damage is part of what it reports as its compute
      fault.apply(y);
    }
    long nanos = System.nanoTime() - t0;
    stats.computeNanos.add(nanos);
    stats.batchCalls.increment();
    stats.batchRows.record(ready.size());
    for (int i = 0; i < ready.size(); i++) {
      ready.get(i).session().finish(ready.get(i), ys[i], nanos, t0, ready.size());
    }
    logRows.add(ready.size());
    logOrtNanos.add(nanos);
    logJavaNanos.add(System.nanoTime() - start - nanos);
    if (stats.batchCalls.sum() % LOG_EVERY_CALLS == 0) {
      long rowsRun = logRows.sumThenReset();
      double ortMs = logOrtNanos.sumThenReset() / 1e6;
      double javaMs = logJavaNanos.sumThenReset() / 1e6;
      log.info(String.format("stage batching layers=[%d,%d) calls=%d rowsPerCall=%.2f ortMsPerCall=%.3f"
          + " javaMsPerCall=%.3f ortMsPerRow=%.3f javaMsPerRow=%.3f sessions=%d", shard.from(), shard.to(),
          LOG_EVERY_CALLS, rowsRun / (double) LOG_EVERY_CALLS, ortMs / LOG_EVERY_CALLS, javaMs / LOG_EVERY_CALLS,
          ortMs / rowsRun, javaMs / rowsRun, sessions.size()));
    }
  }

  /** The first message on an incoming stream was an OpenSession: this stream is the session's upstream. */
  public void open(MessageStream<PipelineMessage> upstream, OpenSession open) {
    String id = open.getSessionId();
    try {
      Hop next = checkOpen(open);
      WeightFormat asked = WeightsField.parse(open.getWeights());
      if (asked != shard.weights()) { // stages of different formats compute different numbers
        upstream.send(PipelineProtocol.error(Error.Code.WRONG_MODEL, id, "this peer keeps layers [" + shard.from() + ","
            + shard.to() + ") in " + shard.weights().id() + " weights, the session asks for " + asked.id()
            + ": a session never mixes weight formats", host.peerId(), 0));
        upstream.close();
        return;
      }
      PeerId target;
      List<Multiaddr> addrs = new ArrayList<>();
      try { // parsed before anything is reserved: a bad one must not leave a session behind
        target = PeerId.fromBytes((next == null ? open.getEntryPeerId() : next.getPeerId()).toByteArray());
        for (ByteString b : next == null ? open.getEntryAddrsList() : next.getAddrsList()) {
          addrs.add(Multiaddr.fromBytes(b.toByteArray()));
        }
      } catch (P2pException e) {
        throw new IllegalArgumentException((next == null ? "the entry's" : "the next hop's") + " peer id or address: "
            + e.getMessage());
      }
      // KV memory is charged as rounds fill positions (StageSession.growKv), not for max_tokens now
      long kvBytes = 0;
      String refused = quota.acquire(upstream.remote(), kvBytes);
      if (refused != null) {
        upstream.send(PipelineProtocol.error(Error.Code.LIMIT, id, refused, host.peerId(), 0));
        upstream.close();
        return;
      }
      StageKv kv;
      try {
        kv = shard.batch().openSession(id, upstream.remote().toBase58(), (int) open.getMaxTokens());
      } catch (RuntimeLimitException e) {
        quota.release(upstream.remote(), kvBytes);
        upstream.send(PipelineProtocol.error(Error.Code.LIMIT, id, e.getMessage(), host.peerId(), 0));
        upstream.close();
        return;
      }
      StageSession s = new StageSession(this, open, upstream, kv, kvBytes);
      if (sessions.putIfAbsent(id, s) != null) {
        kv.close();
        quota.release(upstream.remote(), kvBytes);
        throw new IllegalArgumentException("session " + id + " is already open here");
      }
      upstream.listener(s);
      log.info("session open id={} from={} layers=[{},{}) maxTokens={} last={}", id, upstream.remote(), shard.from(),
          shard.to(), open.getMaxTokens(), next == null);
      s.connect(target, addrs, next == null);
    } catch (IllegalArgumentException e) {
      upstream.send(PipelineProtocol.error(Error.Code.BAD_REQUEST, id, e.getMessage(), host.peerId(), 0));
      upstream.close();
    }
  }

  /** Validates an OpenSession against what this node serves; returns the next hop (null when last). */
  private Hop checkOpen(OpenSession open) {
    String id = open.getSessionId();
    if (id.isEmpty() || id.length() > PipelineProtocol.MAX_SESSION_ID_CHARS) {
      throw new IllegalArgumentException("session id must have 1.." + PipelineProtocol.MAX_SESSION_ID_CHARS + " chars");
    }
    if (!open.getModelId().equals(shard.modelId())) {
      throw new IllegalArgumentException("this peer serves model " + shard.modelId() + ", not " + open.getModelId());
    }
    ModelConfig c = shard.config();
    List<Hop> chain = open.getChainList();
    int layer = 0;
    int self = -1;
    for (int i = 0; i < chain.size(); i++) {
      Hop h = chain.get(i);
      if (h.getFromLayer() != layer || h.getToLayer() <= h.getFromLayer()) {
        throw new IllegalArgumentException("the chain does not cover the layers in order at hop " + i);
      }
      layer = h.getToLayer();
      if (Arrays.equals(h.getPeerId().toByteArray(), host.peerId().toBytes()) && h.getFromLayer() == shard.from()) {
        self = i;
      }
    }
    if (layer != c.numLayers()) {
      throw new IllegalArgumentException("the chain ends at layer " + layer + " of " + c.numLayers());
    }
    if (self < 0 || chain.get(self).getToLayer() != shard.to()) {
      throw new IllegalArgumentException("this peer serves layers [" + shard.from() + "," + shard.to()
          + "), which the chain does not give it");
    }
    if (open.getMaxTokens() < 1 || open.getMaxTokens() > c.maxPositionEmbeddings()) {
      throw new IllegalArgumentException("max_tokens " + open.getMaxTokens() + " is outside 1.." + c.maxPositionEmbeddings());
    }
    if (open.getActivationDtype() == DType.UNRECOGNIZED) {
      throw new IllegalArgumentException("unknown activation type " + open.getActivationDtypeValue());
    }
    if (!(open.getTemperature() >= 0) || Double.isInfinite(open.getTemperature())
        || !(open.getTopP() > 0 && open.getTopP() <= 1)) {
      throw new IllegalArgumentException("temperature must be a finite number >= 0 and top_p in (0, 1]");
    }
    WeightsField.parse(open.getWeights()); // a format this peer does not know is a bad request
    if (open.hasPenalties()) {
      var p = open.getPenalties();
      penalties(p); // throws IllegalArgumentException with the reason
      if (p.getPromptTokens() > open.getMaxTokens()) {
        throw new IllegalArgumentException("prompt_tokens " + p.getPromptTokens() + " exceed max_tokens "
            + open.getMaxTokens());
      }
    }
    if (self == chain.size() - 1 && open.getEntryPeerId().isEmpty()) {
      throw new IllegalArgumentException("the last stage needs the entry's peer id");
    }
    return self + 1 < chain.size() ? chain.get(self + 1) : null;
  }

  static dev.dsd.verification.processing.Penalties penalties(dev.dsd.node.pipeline.proto.Penalties p) {
    return new dev.dsd.verification.processing.Penalties(p.getRepetition(), p.getPresence(), p.getFrequency());
  }

  /** Ends sessions that have seen no message for the shard's idle timeout (an entry that vanished). */
  public void expireIdle() {
    long limit = shard.batch().sessions().idleTimeout().toNanos();
    long now = System.nanoTime();
    for (StageSession s : new ArrayList<>(sessions.values())) {
      if (now - s.lastActivity > limit) {
        s.fail(Error.Code.UNKNOWN_SESSION, "session expired after " + shard.batch().sessions().idleTimeout().toSeconds()
            + " s idle");
      }
    }
  }

  @Override
  public void close() {
    new ArrayList<>(sessions.values()).forEach(s -> s.fail(Error.Code.STAGE_FAILED, "node shutting down"));
  }

}
