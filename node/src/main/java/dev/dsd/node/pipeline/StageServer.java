package dev.dsd.node.pipeline;

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
import dev.dsd.pipeline.model.ModelConfig;
import dev.dsd.pipeline.runtime.RuntimeLimitException;
import dev.dsd.pipeline.runtime.ShardSession;
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
  private static final int TYPICAL_ROUND = 17;
  private final int[] recent = new int[64];
  private long recentCount;

  StageServer(PipelineService service, NettyHost host, HostedShard shard, Executor pool, PipelineStats stats,
      Fault fault) {
    this.fault = fault;
    this.service = service;
    this.quota = new PeerQuota(PeerQuota.Limits.of(shard.runner().sessions().maxSessions(),
        shard.runner().sessions().kvBudgetBytes()));
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

  /** The first message on an incoming stream was an OpenSession: this stream is the session's upstream. */
  void open(MessageStream<PipelineMessage> upstream, OpenSession open) {
    String id = open.getSessionId();
    try {
      Hop next = checkOpen(open);
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
      long kvBytes = shard.runner().sessions().bytesPerToken() * open.getMaxTokens();
      String refused = quota.acquire(upstream.remote(), kvBytes);
      if (refused != null) {
        upstream.send(PipelineProtocol.error(Error.Code.LIMIT, id, refused, host.peerId(), 0));
        upstream.close();
        return;
      }
      ShardSession kv;
      try {
        kv = shard.runner().openSession(id, upstream.remote().toBase58(), (int) open.getMaxTokens());
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
  void expireIdle() {
    long limit = shard.runner().sessions().idleTimeout().toNanos();
    long now = System.nanoTime();
    for (StageSession s : new ArrayList<>(sessions.values())) {
      if (now - s.lastActivity > limit) {
        s.fail(Error.Code.UNKNOWN_SESSION, "session expired after " + shard.runner().sessions().idleTimeout().toSeconds()
            + " s idle");
      }
    }
  }

  @Override
  public void close() {
    new ArrayList<>(sessions.values()).forEach(s -> s.fail(Error.Code.STAGE_FAILED, "node shutting down"));
  }

  /** One session at this stage: its cache and its two neighbours. */
  private final class StageSession implements MessageStream.Listener<PipelineMessage> {
    private final OpenSession open;
    private final String id;
    private final MessageStream<PipelineMessage> upstream;
    private final ShardSession kv;
    private volatile MessageStream<PipelineMessage> downstream; // next stage, or the entry on the last stage
    private volatile PeerId downstreamPeer;
    private boolean last;
    private long lastRound;
    private final AtomicBoolean ended = new AtomicBoolean();
    private final long kvBytes;
    /** The chain's peers before this stage: the only ones an upstream error may name. */
    private final Set<ByteString> earlierPeers = new HashSet<>();
    private volatile long lastActivity = System.nanoTime();
    /** On the last stage of a session with penalties: its token history; else null. */
    private final PenaltyState penalties;

    StageSession(OpenSession open, MessageStream<PipelineMessage> upstream, ShardSession kv, long kvBytes) {
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
                  what + target + " is unreachable: " + rootMessage(err), target, 0)));
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
      String why = from.remote() + " went away" + (cause == null ? "" : ": " + rootMessage(cause));
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
        if (over != null) {
          upstream.send(PipelineProtocol.error(Error.Code.LIMIT, id, over, host.peerId(), r.getRound()));
          return;
        }
      }
      float[] hidden = null;
      if (problem == null && !shard.runner().isFirst()) {
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
      try {
        long t0 = System.nanoTime();
        kv.truncate(r.getKeep());
        ModelConfig c = shard.config();
        int t = shard.runner().isFirst() ? r.getTokensCount() : r.getHidden().getShape(0);
        float[] y = shard.runner().isFirst()
            ? shard.runner().forwardTokens(kv, r.getTokensList().stream().mapToInt(Integer::intValue).toArray())
            : shard.runner().forwardHidden(kv, hidden, t);
        fault.apply(y);
        long t1 = System.nanoTime();
        PipelineMessage msg;
        if (!last) {
          Tensor h = Activations.encode(y, t, c.hiddenSize(), open.getActivationDtype());
          Round.Builder b = r.toBuilder().clearTokens().setHidden(h);
          msg = PipelineMessage.newBuilder().setRound(b.addTimings(timing(t1 - t0, t0 - queued)
              .toBuilder().setBytesOut(h.getData().size()))).build();
        } else {
          msg = PipelineMessage.newBuilder().setResult(result(r, y, t, t1 - t0, t0 - queued)).build();
        }
        int bytes = out.send(msg);
        stats.rounds.increment();
        stats.bytesSent.add(bytes);
        stats.computeNanos.add(t1 - t0);
        recordCompute(t, t1 - t0);
        log.debug("round session={} round={} positions={} keep={} computeUs={} bytes={}", id, r.getRound(), t, r.getKeep(),
            (t1 - t0) / 1000, bytes);
      } catch (RuntimeLimitException e) {
        fail(Error.Code.LIMIT, e.getMessage());
      } catch (IllegalArgumentException e) {
        fail(Error.Code.BAD_REQUEST, e.getMessage());
      } catch (RuntimeException e) {
        log.warn("round failed session={} round={}: {}", id, r.getRound(), e.toString());
        fail(Error.Code.INTERNAL, "stage failed: " + e.getMessage());
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
      if (Integer.toUnsignedLong(r.getKeep()) > kv.length()) { // uint32: 2^31 and up are negative ints
        return "keep " + Integer.toUnsignedString(r.getKeep()) + " is beyond the " + kv.length() + " cached positions";
      }
      boolean first = shard.runner().isFirst();
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

    private RoundResult result(Round r, float[] logits, int t, long computeNanos, long queueNanos) {
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
      return b.addTimings(timing(computeNanos, queueNanos).toBuilder().setBytesOut(bytes)).build();
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
      quota.release(upstream.remote(), kvBytes);
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
                + peer + " went away" + (cause == null ? "" : ": " + rootMessage(cause)), peer, lastRound));
          }
        });
      }
    }
  }

  static String rootMessage(Throwable t) {
    Throwable c = t;
    while (c.getCause() != null && c.getCause() != c) {
      c = c.getCause();
    }
    return c.getMessage() == null ? c.getClass().getSimpleName() : c.getMessage();
  }
}
