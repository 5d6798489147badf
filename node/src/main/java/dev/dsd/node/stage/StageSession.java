package dev.dsd.node.stage;

import dev.dsd.node.pipeline.PipelineProtocol;
import dev.dsd.node.pipeline.Activations;
import dev.dsd.node.pipeline.PipelineService;
import dev.dsd.node.pipeline.PipelineStats;
import dev.dsd.node.pipeline.Timeline;

import dev.dsd.node.generate.VocabMask;
import dev.dsd.node.wire.MessageStream;
import com.google.protobuf.ByteString;
import dev.dsd.node.pipeline.proto.Cancel;
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
import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.host.NettyHost;
import dev.dsd.p2p.multiaddr.Multiaddr;
import dev.dsd.pipeline.runtime.RuntimeLimitException;
import dev.dsd.pipeline.runtime.StageBatchRunner;
import dev.dsd.pipeline.runtime.StageKv;
import dev.dsd.verification.acceptance.LogitScores;
import dev.dsd.verification.acceptance.SparseScores;
import dev.dsd.verification.processing.PenaltyState;
import java.util.Arrays;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import java.util.HashSet;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;

/** One session at this stage: its cache and its two neighbours. */
final class StageSession implements MessageStream.Listener<PipelineMessage> {
  private static final Logger log = LoggerFactory.getLogger(StageSession.class);
  private final StageServer server;
  private final PipelineService service;
  private final NettyHost host;
  private final HostedShard shard;
  private final PeerQuota quota;
  private final PipelineStats stats;
  private final StageScheduler<StageRound> scheduler;
  private final OpenSession open;
  private final String id;
  private final MessageStream<PipelineMessage> upstream;
  final StageKv kv;
  private volatile MessageStream<PipelineMessage> downstream; // next stage, or the entry on the last stage
  private volatile PeerId downstreamPeer;
  private boolean last;
  private long lastRound;
  private long preparedRound = -1; // the round the cache was last rolled back for (runBatch's thread only)
  private final AtomicBoolean ended = new AtomicBoolean();
  private long kvBytes; // charged to the upstream peer's quota: kvTokens positions' worth
  private int kvTokens;
  private int queuedLength; // cache length after every round accepted so far has run (rounds arrive in order)
  /** The chain's peers before this stage: the only ones an upstream error may name. */
  private final Set<ByteString> earlierPeers = new HashSet<>();
  volatile long lastActivity = System.nanoTime();
  /** Pipelined rounds: which are queued, in a call or cancelled, and what a Cancel still has to do. */
  private final RoundLedger ledger = new RoundLedger();
  /** On the last stage of a session with penalties: its token history; else null. */
  private final PenaltyState penalties;

  StageSession(StageServer server, OpenSession open, MessageStream<PipelineMessage> upstream, StageKv kv, long kvBytes) {
    this.server = server;
    this.service = server.service;
    this.host = server.host;
    this.shard = server.shard;
    this.quota = server.quota;
    this.stats = server.stats;
    this.scheduler = server.scheduler;
    boolean lastStage = shard.to() == shard.config().numLayers(); // checkOpen: the chain ends at our last layer
    this.penalties = lastStage && open.hasPenalties() ? new PenaltyState(StageServer.penalties(open.getPenalties()),
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
      case CANCEL -> cancel(from, m);
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
    Timeline.event(id, r.getRound(), where(), "recv", "");
    String problem = RoundCheck.problem(r, id, lastRound, queuedLength, shard, kv.maxTokens(), penalties != null);
    if (problem == null) {
      String over = quota.charge(upstream.remote(), r.getSerializedSize());
      if (over == null) {
        over = growKv(r);
      }
      if (over == null) {
        try { // the shard's budget, across all peers: refused here rather than failing a whole batched call
          kv.charge(RoundCheck.kept(r) + positions(r));
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
    if (problem == null && !shard.batch().range().isFirst()) {
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
    queuedLength = RoundCheck.kept(r) + t;
    ledger.submitted(r.getRound(), queuedLength);
    if (Timeline.on()) {
      Timeline.event(id, r.getRound(), where(), "queued", "waiting=" + scheduler.waiting());
    }
    scheduler.submit(new StageRound(this, r, t, hidden, queued));
  }

  /**
   * Rolls the cache back to what this round keeps: a truncation, or for a round after a tree the
   * accepted path compacted after {@code keep}. Done once per round, so a batched call retried row
   * by row does not move the rows twice.
   */
  void prepare(StageRound j) {
    Round r = j.round();
    if (preparedRound == r.getRound()) {
      return;
    }
    if (r.getKeepRowsCount() == 0) {
      kv.truncate(r.getKeep());
    } else {
      kv.compact(r.getKeep(), r.getKeepRowsList().stream().mapToInt(Integer::intValue).toArray());
    }
    preparedRound = r.getRound();
  }

  /** This round's share of a batched call. */
  StageBatchRunner.Row row(StageRound j) {
    StageBatchRunner.Row row = shard.batch().range().isFirst()
        ? StageBatchRunner.Row.tokens(kv, j.round().getTokensList().stream().mapToInt(Integer::intValue).toArray())
        : StageBatchRunner.Row.hidden(kv, j.hidden(), j.positions());
    int[] parents = RoundCheck.parents(j.round());
    return parents == null ? row : row.withTree(parents);
  }

  /** Sends a computed round on: hidden states to the next stage, or the score summary to the entry. */
  void finish(StageRound j, float[] y, long computeNanos, long startedAt, int rows) {
    Round r = j.round();
    int t = j.positions();
    long queueNanos = startedAt - j.queuedAt();
    if (Timeline.on()) {
      Timeline.event(id, r.getRound(), where(), "end", "computeUs=" + computeNanos / 1000 + " rows=" + rows);
    }
    try {
      MessageStream<PipelineMessage> out = downstream;
      if (out == null || !out.isOpen()) {
        ledger.endCall(j);
        end("no next hop", () -> upstream.send(PipelineProtocol.error(Error.Code.STAGE_FAILED, id, "the next hop "
            + downstreamPeer + " is not connected", downstreamPeer != null ? downstreamPeer : host.peerId(),
            r.getRound())));
        return;
      }
      PipelineMessage msg = null;
      if (!ledger.isCancelled(j)) {
        if (!last) {
          Tensor h = Activations.encode(y, t, shard.config().hiddenSize(), open.getActivationDtype());
          Round.Builder b = r.toBuilder().clearTokens().setHidden(h);
          msg = PipelineMessage.newBuilder().setRound(b.addTimings(timing(computeNanos, queueNanos)
              .toBuilder().setBytesOut(h.getData().size()).setBatchRows(rows))).build();
        } else {
          msg = PipelineMessage.newBuilder().setResult(result(r, y, t, computeNanos, queueNanos, rows)).build();
        }
      }
      int bytes = -1;
      // checked and sent at once: a cancel that comes meanwhile either drops this output or goes on after it
      synchronized (ledger) {
        if (ledger.endCall(j) && msg != null) {
          bytes = out.send(msg);
        }
      }
      settle(); // a cancel waiting for this round's output goes on right behind it
      if (bytes < 0) {
        stats.cancelledRounds.increment();
        log.debug("cancelled round dropped after its call session={} round={}", id, r.getRound());
        Timeline.event(id, r.getRound(), where(), "dropped", "after its call");
        return; // cancelled while it ran: the compute is lost, its result must not be applied
      }
      Timeline.event(id, r.getRound(), where(), "forwarded", "");
      stats.rounds.increment();
      stats.bytesSent.add(bytes);
      server.recordCompute(t, computeNanos);
      log.debug("round session={} round={} positions={} keep={} computeUs={} queueUs={} bytes={}", id, r.getRound(), t,
          r.getKeep(), computeNanos / 1000, queueNanos / 1000, bytes);
    } catch (RuntimeException e) {
      failed(j, e);
    }
  }

  /** A round that could not run: the session is over, with the reason its kind says. */
  void failed(StageRound j, RuntimeException e) {
    Round r = j.round();
    ledger.endCall(j);
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

  /** This stage's place in the timeline: its layers. */
  private String where() {
    return "L" + shard.from() + "-" + shard.to();
  }

  boolean live() {
    return !ended.get();
  }

  /** The scheduler put {@code j} in a call; false (and it is dropped) when it was cancelled meanwhile. */
  boolean startCall(StageRound j) {
    if (ledger.startCall(j)) {
      Timeline.event(id, j.round().getRound(), where(), "start", "");
      return true;
    }
    Timeline.event(id, j.round().getRound(), where(), "dropped", "before its call");
    stats.cancelledRounds.increment();
    settle();
    return false;
  }

  /** Passes on the cancels whose rounds are out, and rolls the cache back when nothing of the session runs. */
  private void settle() {
    List<PipelineMessage> out = ledger.settle(kv, ended.get());
    MessageStream<PipelineMessage> d = downstream;
    if (!last && d != null) {
      out.forEach(d::send);
    }
  }

  /**
   * Drops the rounds after the cancel's round here and rolls the cache back to its keep, then passes
   * it on (see {@link Cancel}): the rounds still queued at this stage never run, one in a call has
   * its output dropped, and the ones already sent on meet the cancel at the next stage. The rounds
   * it lets stand that are still here go on first.
   */
  private void cancel(MessageStream<PipelineMessage> from, PipelineMessage m) {
    Cancel c = m.getCancel();
    String[] problem = new String[1];
    Set<Long> gone = null;
    if (!c.getSessionId().equals(id)) {
      problem[0] = "this stream carries session " + id + ", not " + c.getSessionId();
    } else {
      gone = ledger.cancel(m, lastRound, problem);
    }
    if (gone == null) {
      stats.rejectedMessages.increment();
      from.send(PipelineProtocol.error(Error.Code.BAD_REQUEST, id, problem[0], host.peerId(), c.getAfterRound()));
      return;
    }
    queuedLength = c.getKeep();
    int dropped = 0;
    if (!gone.isEmpty()) {
      Set<Long> marked = gone;
      List<StageRound> out = scheduler.drop(j -> j.session() == this && marked.contains(j.round().getRound()));
      ledger.dropped(out);
      dropped = out.size();
      stats.cancelledRounds.add(dropped);
    }
    settle();
    log.debug("cancel session={} afterRound={} keep={} droppedQueued={} cancelled={}", id, c.getAfterRound(),
        c.getKeep(), dropped, gone.size());
    if (Timeline.on()) {
      Timeline.event(id, c.getAfterRound(), where(), "cancel", "keep=" + c.getKeep() + " droppedQueued=" + dropped
          + " cancelled=" + gone.size());
    }
  }

  /** Charges the upstream peer's KV quota for the positions this (checked) round fills; why not, or null. */
  /** New positions a round runs: its tokens on the first stage, its hidden rows later on. */
  private int positions(Round r) {
    return shard.batch().range().isFirst() ? r.getTokensCount() : r.getHidden().getShape(0);
  }

  private String growKv(Round r) {
    int need = RoundCheck.kept(r) + positions(r);
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
    } else if (r.getSample()) {
      SampledRows.add(b, new LogitScores(lastRows, vocab, open.getTemperature(), open.getTopP()), r.getSampleSeed());
    } else {
      int[] drafts = r.getDraftsList().stream().mapToInt(Integer::intValue).toArray();
      double temp = open.getTemperature();
      int[] draftRows = RoundCheck.draftRows(r, t); // checked: each inside the rows
      LogitScores full = new LogitScores(lastRows, vocab, temp, open.getTopP());
      SparseScores s = draftRows == null ? SparseScores.summarize(full, drafts, temp > 0)
          : SparseScores.summarize(full, drafts, draftRows, temp > 0);
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
    server.sessions.remove(id, this);
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
