package dev.dsd.node.stage;

import dev.dsd.node.pipeline.PipelineProtocol;
import dev.dsd.node.pipeline.Activations;
import dev.dsd.node.pipeline.PipelineService;
import dev.dsd.node.pipeline.PipelineStats;

import dev.dsd.node.generate.VocabMask;
import dev.dsd.node.wire.MessageStream;
import com.google.protobuf.ByteString;
import dev.dsd.node.pipeline.proto.DType;
import dev.dsd.node.pipeline.proto.Error;
import dev.dsd.node.pipeline.proto.Hop;
import dev.dsd.node.pipeline.proto.OpenSession;
import dev.dsd.node.pipeline.proto.Opened;
import dev.dsd.node.pipeline.proto.PipelineMessage;
import dev.dsd.node.pipeline.proto.Round;
import dev.dsd.node.pipeline.proto.RoundResult;
import dev.dsd.node.pipeline.proto.Row;
import dev.dsd.node.pipeline.proto.StageTiming;
import dev.dsd.node.pipeline.proto.Tensor;
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
import dev.dsd.verification.acceptance.LogitScores;
import dev.dsd.verification.acceptance.SparseScores;
import dev.dsd.verification.processing.PenaltyState;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import java.util.HashSet;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;

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

  private final PipelineService service;
  private final Fault fault;
  private final PeerQuota quota;
  private final NettyHost host;
  private final HostedShard shard;
  private final Executor pool;
  private final Map<String, StageSession> sessions = new ConcurrentHashMap<>();
  private final PipelineStats stats;
  private final StageScheduler<StageRound> scheduler;
  private static final int TYPICAL_ROUND = 17;
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

  private void recordCompute(int positions, long nanos) {
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
    List<StageRound> ready = new ArrayList<>();
    List<StageBatchRunner.Row> rows = new ArrayList<>();
    for (StageRound j : batch) {
      try {
        j.session().kv.truncate(j.round().getKeep());
        rows.add(j.session().row(j));
        ready.add(j);
      } catch (RuntimeException e) {
        j.session().failed(j.round(), e);
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
        ready.get(0).session().failed(ready.get(0).round(), e);
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
      StageSession s = new StageSession(open, upstream, kv, kvBytes);
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

  private static dev.dsd.verification.processing.Penalties penalties(dev.dsd.node.pipeline.proto.Penalties p) {
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

  /** One session at this stage: its cache and its two neighbours. */
  final class StageSession implements MessageStream.Listener<PipelineMessage> {
    private final OpenSession open;
    private final String id;
    private final MessageStream<PipelineMessage> upstream;
    private final StageKv kv;
    private volatile MessageStream<PipelineMessage> downstream; // next stage, or the entry on the last stage
    private volatile PeerId downstreamPeer;
    private boolean last;
    private long lastRound;
    private final AtomicBoolean ended = new AtomicBoolean();
    private long kvBytes; // charged to the upstream peer's quota: kvTokens positions' worth
    private int kvTokens;
    private int queuedLength; // cache length after every round accepted so far has run (rounds arrive in order)
    /** The chain's peers before this stage: the only ones an upstream error may name. */
    private final Set<ByteString> earlierPeers = new HashSet<>();
    private volatile long lastActivity = System.nanoTime();
    /** On the last stage of a session with penalties: its token history; else null. */
    private final PenaltyState penalties;

    StageSession(OpenSession open, MessageStream<PipelineMessage> upstream, StageKv kv, long kvBytes) {
      boolean lastStage = shard.to() == shard.config().numLayers(); // checkOpen: the chain ends at our last layer
      this.penalties = lastStage && open.hasPenalties() ? new PenaltyState(penalties(open.getPenalties()),
          open.getPenalties().getPromptTokens(), shard.config().vocabSize(), (int) open.getMaxTokens()) : null;
      for (Hop h : open.getChainList()) {
        if (h.getFromLayer() >= shard.from()) {
          break;
        }
        earlierPeers.add(h.getPeerId());
      }
      this.kvBytes = kvBytes;
      this.open = open;
      this.id = open.getSessionId();
      this.upstream = upstream;
      this.kv = kv;
    }

    void connect(PeerId target, List<Multiaddr> addrs, boolean toEntry) {
      this.last = toEntry;
      this.downstreamPeer = target;
      service.open(target, addrs, new Downstream()).whenComplete((st, err) -> {
            if (err != null) {
              String what = toEntry ? "the entry " : "the next stage ";
              end("cannot reach " + target, () -> upstream.send(PipelineProtocol.error(Error.Code.UNREACHABLE, id,
                  what + target + " is unreachable: " + PipelineProtocol.rootMessage(err), target, 0)));
              return;
            }
            downstream = st;
            if (ended.get()) { // the session ended while this stream opened: nobody else will close it
              st.close();
              return;
            }
            if (toEntry) {
              downstream.send(PipelineMessage.newBuilder().setOpened(Opened.newBuilder().setSessionId(id)
                  .addTimings(timing(0, 0))).build());
            } else {
              downstream.send(PipelineMessage.newBuilder().setOpen(open).build());
            }
          });
    }

    @Override
    public void onMessage(MessageStream<PipelineMessage> from, PipelineMessage m) {
      lastActivity = System.nanoTime();
      switch (m.getBodyCase()) {
        case ROUND -> round(m.getRound());
        case CLOSE -> {
          if (!m.getClose().getSessionId().equals(id)) {
            stats.rejectedMessages.increment();
            from.send(PipelineProtocol.error(Error.Code.UNKNOWN_SESSION, m.getClose().getSessionId(), "this stream carries "
                + "session " + id + ", not " + m.getClose().getSessionId(), host.peerId(), 0));
            return;
          }
          end(null, () -> {
            if (downstream != null && !last) {
              downstream.send(m);
            }
          });
        }
        case ERROR -> upstreamFailed(from, m);
        default -> from.send(PipelineProtocol.error(Error.Code.BAD_REQUEST, id, "a stage expects rounds or close, not "
            + m.getBodyCase(), host.peerId(), 0));
      }
    }

    /**
     * The previous stage (or the entry) went away without closing the session. The stages after this
     * one must learn whose fault it is: if this one only closed its own stream on, the next stage, and
     * in the end the entry, would blame this healthy peer, back it off, and route to nothing.
     */
    @Override
    public void onClosed(MessageStream<PipelineMessage> from, Throwable cause) {
      String why = from.remote() + " went away" + (cause == null ? "" : ": " + PipelineProtocol.rootMessage(cause));
      end("upstream " + why, () -> {
        MessageStream<PipelineMessage> d = downstream;
        if (d != null && !host.isClosing()) {
          d.send(PipelineProtocol.error(Error.Code.STAGE_FAILED, id, "the previous stage " + why, from.remote(),
              lastRound));
        }
      });
    }

    /**
     * An upstream stage saw the stage before it fail: passed on towards the entry, and the session is
     * over. Only a peer earlier in the chain may be named, so an upstream cannot get a later stage
     * (or anyone else) avoided; anything else is refused like any other misplaced message.
     */
    private void upstreamFailed(MessageStream<PipelineMessage> from, PipelineMessage m) {
      Error e = m.getError();
      boolean earlier = e.getSessionId().equals(id) && earlierPeers.contains(e.getPeerId());
      if (!earlier) {
        stats.rejectedMessages.increment();
        from.send(PipelineProtocol.error(Error.Code.BAD_REQUEST, id, "a stage takes from upstream only an error naming "
            + "an earlier stage of the chain", host.peerId(), 0));
        return;
      }
      end("upstream error: " + e.getMessage(), () -> {
        MessageStream<PipelineMessage> d = downstream;
        if (d != null) {
          d.send(m);
        }
      });
    }

    private void round(Round r) {
      long queued = System.nanoTime();
      String problem = checkRound(r);
      if (problem == null) {
        String over = quota.charge(upstream.remote(), r.getSerializedSize());
        if (over == null) {
          over = growKv(r);
        }
        if (over == null) {
          try { // the shard's budget, across all peers: refused here rather than failing a whole batched call
            kv.charge(r.getKeep() + positions(r));
          } catch (RuntimeLimitException e) {
            fail(Error.Code.LIMIT, e.getMessage()); // the shard is full: the session ends, its memory is freed
            return;
          }
        }
        if (over != null) {
          upstream.send(PipelineProtocol.error(Error.Code.LIMIT, id, over, host.peerId(), r.getRound()));
          return;
        }
      }
      float[] hidden = null;
      if (problem == null && !shard.batch().isFirst()) {
        // decoded before the cache is truncated: bad bytes or a NaN must leave the session as it was
        try {
          hidden = Activations.decode(r.getHidden(), shard.config().hiddenSize());
        } catch (IllegalArgumentException e) {
          problem = e.getMessage();
        }
      }
      if (problem != null) {
        stats.rejectedMessages.increment();
        upstream.send(PipelineProtocol.error(Error.Code.BAD_REQUEST, id, problem, host.peerId(), r.getRound()));
        return;
      }
      MessageStream<PipelineMessage> out = downstream;
      if (out == null || !out.isOpen()) {
        // the fault is the next hop's (it went away before this round came): blaming this stage would
        // make the entry avoid a healthy peer and keep routing to the dead one
        end("no next hop", () -> upstream.send(PipelineProtocol.error(Error.Code.STAGE_FAILED, id, "the next hop "
            + downstreamPeer + " is not connected", downstreamPeer != null ? downstreamPeer : host.peerId(),
            r.getRound())));
        return;
      }
      lastRound = r.getRound();
      int t = positions(r);
      queuedLength = r.getKeep() + t;
      scheduler.submit(new StageRound(this, r, t, hidden, queued));
    }

    /** This round's share of a batched call. */
    StageBatchRunner.Row row(StageRound j) {
      return shard.batch().isFirst()
          ? StageBatchRunner.Row.tokens(kv, j.round().getTokensList().stream().mapToInt(Integer::intValue).toArray())
          : StageBatchRunner.Row.hidden(kv, j.hidden(), j.positions());
    }

    /** Sends a computed round on: hidden states to the next stage, or the score summary to the entry. */
    void finish(StageRound j, float[] y, long computeNanos, long startedAt, int rows) {
      Round r = j.round();
      int t = j.positions();
      long queueNanos = startedAt - j.queuedAt();
      try {
        MessageStream<PipelineMessage> out = downstream;
        if (out == null || !out.isOpen()) {
          end("no next hop", () -> upstream.send(PipelineProtocol.error(Error.Code.STAGE_FAILED, id, "the next hop "
              + downstreamPeer + " is not connected", downstreamPeer != null ? downstreamPeer : host.peerId(),
              r.getRound())));
          return;
        }
        PipelineMessage msg;
        if (!last) {
          Tensor h = Activations.encode(y, t, shard.config().hiddenSize(), open.getActivationDtype());
          Round.Builder b = r.toBuilder().clearTokens().setHidden(h);
          msg = PipelineMessage.newBuilder().setRound(b.addTimings(timing(computeNanos, queueNanos)
              .toBuilder().setBytesOut(h.getData().size()).setBatchRows(rows))).build();
        } else {
          msg = PipelineMessage.newBuilder().setResult(result(r, y, t, computeNanos, queueNanos, rows)).build();
        }
        int bytes = out.send(msg);
        stats.rounds.increment();
        stats.bytesSent.add(bytes);
        recordCompute(t, computeNanos);
        log.debug("round session={} round={} positions={} keep={} computeUs={} queueUs={} bytes={}", id, r.getRound(), t,
            r.getKeep(), computeNanos / 1000, queueNanos / 1000, bytes);
      } catch (RuntimeException e) {
        failed(r, e);
      }
    }

    /** A round that could not run: the session is over, with the reason its kind says. */
    void failed(Round r, RuntimeException e) {
      if (ended.get()) {
        return; // closed while it waited or ran: nobody is waiting for this round
      }
      if (e instanceof RuntimeLimitException) {
        fail(Error.Code.LIMIT, e.getMessage());
      } else if (e instanceof IllegalArgumentException) {
        fail(Error.Code.BAD_REQUEST, e.getMessage());
      } else {
        log.warn("round failed session={} round={}: {}", id, r.getRound(), e.toString());
        fail(Error.Code.INTERNAL, "stage failed: " + e.getMessage());
      }
    }

    boolean live() {
      return !ended.get();
    }

    /** Charges the upstream peer's KV quota for the positions this (checked) round fills; why not, or null. */
    /** New positions a round runs: its tokens on the first stage, its hidden rows later on. */
    private int positions(Round r) {
      return shard.batch().isFirst() ? r.getTokensCount() : r.getHidden().getShape(0);
    }

    private String growKv(Round r) {
      int need = r.getKeep() + positions(r);
      if (need <= kvTokens) {
        return null;
      }
      long more = (long) (need - kvTokens) * shard.batch().sessions().bytesPerToken();
      synchronized (this) { // against end() releasing the charge meanwhile
        String over = ended.get() ? "session " + id + " has ended" : quota.growKv(upstream.remote(), more, id, need);
        if (over == null) {
          kvTokens = need;
          kvBytes += more;
        }
        return over;
      }
    }

    /** Everything that can be checked before the cache is touched; null when the round is fine. */
    private String checkRound(Round r) {
      if (!r.getSessionId().equals(id)) {
        return "this stream carries session " + id + ", not " + r.getSessionId();
      }
      if (r.getRound() <= lastRound) {
        return "round " + r.getRound() + " is not after round " + lastRound;
      }
      // against the length the session will have once its queued rounds ran: a session's rounds may
      // follow one another (prefill chunks) before the first of them reaches the stage's next call
      if (Integer.toUnsignedLong(r.getKeep()) > queuedLength) { // uint32: 2^31 and up are negative ints
        return "keep " + Integer.toUnsignedString(r.getKeep()) + " is beyond the " + queuedLength + " cached positions";
      }
      boolean first = shard.batch().isFirst();
      int t;
      if (first) {
        if (r.hasHidden() || r.getTokensCount() == 0) {
          return "the first stage takes token ids and no hidden states";
        }
        t = r.getTokensCount();
        int vocab = shard.config().vocabSize();
        for (int tok : r.getTokensList()) {
          if (tok < 0 || tok >= vocab) {
            return "token id " + Integer.toUnsignedString(tok) + " is outside the vocabulary of " + vocab;
          }
        }
      } else {
        if (!r.hasHidden() || r.getTokensCount() != 0) {
          return "stage [" + shard.from() + "," + shard.to() + ") takes hidden states, not token ids";
        }
        Tensor h = r.getHidden();
        if (h.getShapeCount() != 2 || h.getShape(1) != shard.config().hiddenSize() || h.getShape(0) < 1) {
          return "hidden states of shape " + h.getShapeList() + " do not match [positions, " + shard.config().hiddenSize()
              + "]";
        }
        t = h.getShape(0);
      }
      if ((long) r.getKeep() + t > kv.maxTokens()) {
        return "positions " + r.getKeep() + ".." + (r.getKeep() + t) + " exceed the session's " + kv.maxTokens();
      }
      if (r.getRows() < 1 || r.getRows() > t || r.getDraftsCount() >= r.getRows() + 1 || r.getDraftsCount() > t) {
        return "rows " + r.getRows() + " and " + r.getDraftsCount() + " drafts do not fit " + t + " positions";
      }
      int vocab = shard.config().vocabSize();
      if (penalties != null) {
        if (r.getPenaltyTokensCount() != t) {
          return "a session with penalties needs the round's " + t + " token ids, got " + r.getPenaltyTokensCount();
        }
        for (int tok : r.getPenaltyTokensList()) {
          if (tok < 0 || tok >= vocab) {
            return "penalty token id " + Integer.toUnsignedString(tok) + " is outside the vocabulary of " + vocab;
          }
        }
      }
      for (int d : r.getDraftsList()) {
        if (d < 0 || d >= vocab) {
          return "draft token " + Integer.toUnsignedString(d) + " is outside the vocabulary of " + vocab;
        }
      }
      return null;
    }

    private RoundResult result(Round r, float[] logits, int t, long computeNanos, long queueNanos, int batchRows) {
      int vocab = shard.config().vocabSize();
      int rows = r.getRows();
      float[] lastRows = Arrays.copyOfRange(logits, (t - rows) * vocab, t * vocab);
      VocabMask.apply(lastRows, vocab, shard.usableVocab());
      if (penalties != null) { // before anything reads the rows: summary and full logits alike are processed
        penalties.process(r.getKeep(), r.getPenaltyTokensList().stream().mapToInt(Integer::intValue).toArray(), lastRows,
            rows, vocab);
      }
      RoundResult.Builder b = RoundResult.newBuilder().setSessionId(id).setRound(r.getRound()).setVocab(vocab)
          .addAllTimings(r.getTimingsList());
      if (open.getFullLogits()) {
        b.setLogits(Activations.encode(lastRows, rows, vocab, DType.F32));
      } else {
        int[] drafts = r.getDraftsList().stream().mapToInt(Integer::intValue).toArray();
        double temp = open.getTemperature();
        SparseScores s = SparseScores.summarize(new LogitScores(lastRows, vocab, temp, open.getTopP()), drafts, temp > 0);
        for (int row = 0; row < rows; row++) {
          Row.Builder rb = Row.newBuilder().setArgmax(s.argmax()[row]);
          if (s.ids()[row] == null) {
            for (double p : s.probs()[row]) {
              rb.addDense(p);
            }
          } else {
            for (int j = 0; j < s.ids()[row].length; j++) {
              rb.addIds(s.ids()[row][j]).addProbs((float) s.probs()[row][j]);
            }
          }
          b.addRows(rb);
        }
      }
      long bytes = b.build().getSerializedSize();
      return b.addTimings(timing(computeNanos, queueNanos).toBuilder().setBytesOut(bytes).setBatchRows(batchRows)).build();
    }

    private StageTiming timing(long computeNanos, long queueNanos) {
      return StageTiming.newBuilder().setPeerId(ByteString.copyFrom(host.peerId().toBytes()))
          .setComputeMicros((int) Math.min(Integer.MAX_VALUE, computeNanos / 1000))
          .setQueueMicros((int) Math.min(Integer.MAX_VALUE, queueNanos / 1000)).build();
    }

    /**
     * Ends the session for a reason of this stage's own, telling both neighbours: the stages after
     * this one hear it before they see its stream close, so none of them reports this stage as
     * vanished with a different story.
     */
    void fail(Error.Code code, String reason) {
      end(reason, () -> {
        PipelineMessage error = PipelineProtocol.error(code, id, reason, host.peerId(), lastRound);
        upstream.send(error);
        MessageStream<PipelineMessage> d = downstream;
        if (d != null) {
          d.send(error);
        }
      });
    }

    /**
     * Frees the session once; {@code reason} null for a requested close. Only the caller that ends
     * the session says its {@code lastWords} to the neighbours: a stage ending for one reason must
     * not also report, say, the stream its own error just made a neighbour close.
     */
    void end(String reason, Runnable lastWords) {
      if (!ended.compareAndSet(false, true)) {
        return;
      }
      lastWords.run();
      sessions.remove(id, this);
      kv.close();
      synchronized (this) {
        quota.release(upstream.remote(), kvBytes);
      }
      upstream.close();
      MessageStream<PipelineMessage> d = downstream;
      if (d != null) {
        d.close();
      }
      if (reason == null) {
        log.info("session closed id={} layers=[{},{})", id, shard.from(), shard.to());
      } else {
        log.info("session ended id={} layers=[{},{}) reason={}", id, shard.from(), shard.to(), reason);
      }
    }

    /** Messages and the end of the next stage's (or the entry's) stream. */
    private final class Downstream implements MessageStream.Listener<PipelineMessage> {
      @Override
      public void onMessage(MessageStream<PipelineMessage> from, PipelineMessage m) {
        if (m.hasError()) { // a later stage failed: the entry must hear it, then this session is over
          end("downstream error: " + m.getError().getMessage(), () -> upstream.send(m));
        }
      }

      @Override
      public void onClosed(MessageStream<PipelineMessage> from, Throwable cause) {
        PeerId peer = from.remote();
        end("downstream " + peer + " went away", () -> {
          if (!host.isClosing()) { // a node going away has nothing to say about its neighbours
            upstream.send(PipelineProtocol.error(Error.Code.STAGE_FAILED, id, (last ? "the entry " : "the next stage ")
                + peer + " went away" + (cause == null ? "" : ": " + PipelineProtocol.rootMessage(cause)), peer, lastRound));
          }
        });
      }
    }
  }
}
