package dev.dsd.node.entry;

import dev.dsd.node.pipeline.PipelineProtocol;
import dev.dsd.node.pipeline.Activations;
import dev.dsd.node.pipeline.PipelineException;
import dev.dsd.node.pipeline.PipelineService;
import dev.dsd.node.pipeline.Timeline;

import dev.dsd.node.wire.MessageStream;
import com.google.protobuf.ByteString;
import dev.dsd.node.generate.PrefillChunks;
import dev.dsd.node.generate.PipelinedTarget;
import dev.dsd.node.pipeline.proto.DType;
import dev.dsd.node.pipeline.proto.Hop;
import dev.dsd.node.pipeline.proto.OpenSession;
import dev.dsd.node.pipeline.proto.PipelineMessage;
import dev.dsd.node.pipeline.proto.Round;
import dev.dsd.node.pipeline.proto.RoundResult;
import dev.dsd.node.pipeline.proto.Row;
import dev.dsd.node.pipeline.proto.StageTiming;
import dev.dsd.node.routing.Route;
import dev.dsd.node.routing.WeightsField;
import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.multiaddr.Multiaddr;
import dev.dsd.verification.acceptance.LogitScores;
import dev.dsd.verification.acceptance.SparseScores;
import dev.dsd.verification.acceptance.TargetScores;
import dev.dsd.verification.processing.Penalties;
import java.time.Duration;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The entry's side of one pipeline session: sends each round to the first stage and waits for the
 * last stage's result, which comes back on a stream the last stage opened to us. Errors arrive on
 * either stream; the first stage's stream ending means the chain is broken.
 *
 * <p>Pipelined: {@link #send} returns at once, so several rounds travel the chain one behind
 * another; {@link #cancel} sends a {@code Cancel} on the rounds' own stream (see pipeline.proto),
 * and the answers of cancelled rounds, still arriving, are skipped by round number.
 */
public final class PipelineTargetPass implements PipelinedTarget {
  private static final Logger log = LoggerFactory.getLogger(PipelineTargetPass.class);

  /**
   * How one session summarizes and carries activations.
   *
   * @param prefillChunk positions per round at most: longer runs (a prompt, a failover's replay) go
   *     as several rounds, so no frame or activation grows with the prompt
   * @param childScores a greedy tree round asks for each node's probability at its parent's row next
   *     to the argmax (what adaptive verification reads); lossless rounds need the argmax only
   */
  public record Options(DType activations, double temperature, double topP, boolean fullLogits, Duration timeout,
      int prefillChunk, boolean childScores) {
    public Options {
      if (prefillChunk < 1) {
        throw new IllegalArgumentException("prefill chunk must be at least 1 position, got " + prefillChunk);
      }
    }

    public Options(DType activations, double temperature, double topP, boolean fullLogits, Duration timeout) {
      this(activations, temperature, topP, fullLogits, timeout, PrefillChunks.DEFAULT_TOKENS, false);
    }

    public static Options greedy() {
      return new Options(DType.F16, 0, 1, false, Duration.ofSeconds(30));
    }

    public Options withSampling(double temperature, double topP) {
      return new Options(activations, temperature, topP, fullLogits, timeout, prefillChunk, childScores);
    }

    public Options withActivations(DType dtype) {
      return new Options(dtype, temperature, topP, fullLogits, timeout, prefillChunk, childScores);
    }

    /** Whole logit rows instead of a summary: what logprobs need. */
    public Options withFullLogits(boolean full) {
      return new Options(activations, temperature, topP, full, timeout, prefillChunk, childScores);
    }

    public Options withPrefillChunk(int positions) {
      return new Options(activations, temperature, topP, fullLogits, timeout, positions, childScores);
    }

    public Options withChildScores(boolean scores) {
      return new Options(activations, temperature, topP, fullLogits, timeout, prefillChunk, scores);
    }
  }

  private final PipelineService service;
  private final Route route;
  private final Options options;
  private final Penalties penalties;
  private final int promptTokens;
  private final String id = UUID.randomUUID().toString();
  private final LinkedBlockingQueue<PipelineMessage> inbox = new LinkedBlockingQueue<>();
  /** Sent rounds whose answer carries the last stage's draws (tree rounds at T > 0). */
  private final java.util.NavigableSet<Long> sampledRounds = new java.util.concurrent.ConcurrentSkipListSet<>();
  private final AtomicLong stageBytes = new AtomicLong();
  private final PeerId lastPeer;
  private volatile MessageStream<PipelineMessage> first;
  private volatile MessageStream<PipelineMessage> back;
  private long round;
  private int maxTokens;
  private volatile boolean closed;
  /** Per stage, compute micros of the last round: what the router learns from. */
  private volatile List<StageTiming> lastTimings = List.of();
  /** When each round's answer arrived (pipelined rounds' answers wait in the inbox while the entry drafts). */
  private final java.util.concurrent.ConcurrentSkipListMap<Long, Long> arrivals =
      new java.util.concurrent.ConcurrentSkipListMap<>();
  private volatile long lastArrival = -1;

  private PipelineTargetPass(PipelineService service, Route route, Options options, Penalties penalties,
      int promptTokens) {
    this.penalties = penalties;
    this.promptTokens = promptTokens;
    this.service = service;
    this.route = route;
    this.options = options;
    this.lastPeer = route.stages().get(route.stages().size() - 1).peer();
  }

  /** Opens a session along {@code route} with room for {@code maxTokens} positions; waits for all stages. */
  public static PipelineTargetPass open(PipelineService service, Route route, int maxTokens, Options options) {
    return open(service, route, maxTokens, options, Penalties.NONE, 0);
  }

  /**
   * The same for a generation with penalties, which the last stage applies (it keeps the token
   * history; each round carries its token ids to it). {@code promptTokens} tells it where the
   * generated output begins.
   */
  public static PipelineTargetPass open(PipelineService service, Route route, int maxTokens, Options options,
      Penalties penalties, int promptTokens) {
    PipelineTargetPass p = new PipelineTargetPass(service, route, options, penalties, promptTokens);
    service.register(p);
    try {
      p.start(maxTokens);
      return p;
    } catch (RuntimeException e) {
      p.close();
      throw e;
    }
  }

  public Route routeTaken() {
    return route;
  }

  public String sessionId() {
    return id;
  }

  public List<StageTiming> lastTimings() {
    return lastTimings;
  }

  private void start(int maxTokens) {
    this.maxTokens = maxTokens;
    var host = service.host();
    OpenSession.Builder open = OpenSession.newBuilder().setSessionId(id).setModelId(route.modelId())
        .setEntryPeerId(ByteString.copyFrom(host.peerId().toBytes())).setMaxTokens(maxTokens)
        .setActivationDtype(options.activations()).setTemperature(options.temperature()).setTopP(options.topP())
        .setFullLogits(options.fullLogits()).setWeights(WeightsField.of(route.weights()));
    if (penalties.active()) {
      open.setPenalties(dev.dsd.node.pipeline.proto.Penalties.newBuilder().setRepetition(penalties.repetition())
          .setPresence(penalties.presence()).setFrequency(penalties.frequency()).setPromptTokens(promptTokens));
    }
    for (Multiaddr a : host.advertisedAddrs()) {
      open.addEntryAddrs(ByteString.copyFrom(a.withoutPeer().toBytes()));
    }
    for (Route.Stage s : route.stages()) {
      Hop.Builder h = Hop.newBuilder().setPeerId(ByteString.copyFrom(s.peer().toBytes())).setFromLayer(s.from())
          .setToLayer(s.to());
      s.addrs().forEach(a -> h.addAddrs(ByteString.copyFrom(a.withoutPeer().toBytes())));
      open.addChain(h);
    }
    Route.Stage s1 = route.stages().get(0);
    try {
      first = service.open(s1.peer(), s1.addrs(), new FromStream("first stage"))
          .get(options.timeout().toMillis(), TimeUnit.MILLISECONDS);
    } catch (Exception e) {
      throw new PipelineException("UNREACHABLE", "cannot reach the first stage " + s1.peer() + ": "
          + PipelineProtocol.rootMessage(e), s1.peer());
    }
    first.send(PipelineMessage.newBuilder().setOpen(open).build());
    PipelineMessage m = await(0, false);
    if (!m.hasOpened()) {
      throw new PipelineException("BAD_REPLY", "expected the session to open, got " + m.getBodyCase(), lastPeer);
    }
    log.info("pipeline session open id={} route={} weights={} maxTokens={}", id, route.describe(),
        route.weights().id(), maxTokens);
  }

  /** The last stage's stream back to us carries the session's first message. */
  public boolean acceptsReturnFrom(PeerId peer) {
    return back == null && !closed && peer.equals(lastPeer);
  }

  public void attachReturn(MessageStream<PipelineMessage> s, PipelineMessage firstMessage) {
    back = s;
    s.listener(new FromStream("last stage"));
    inbox.add(firstMessage);
  }

  /**
   * Sends the positions as one round, or, when there are more than {@link Options#prefillChunk}, as
   * several (each stage starts on the next chunk while the one after it works on this one); returns
   * the last chunk's round number, whose answer carries the rows.
   */
  @Override
  public long send(int keep, int[] tokens, int[] drafts, int rows) {
    return send(keep, new int[0], tokens, null, drafts, rows, false, 0);
  }

  /**
   * A token-tree round (see {@link TargetPass#runTree}): the rows to keep go with the first pass,
   * the tree's parents with each pass (relative to it); the stages check the tree, so a malformed
   * one comes back as a BAD_REQUEST error and leaves the session as it was.
   */
  @Override
  public TargetScores runTree(int keep, int[] keepRows, int[] tokens, int[] parents, int rows, boolean sample,
      long seed) {
    if (parents.length != tokens.length) {
      throw new IllegalArgumentException(parents.length + " parents for " + tokens.length + " positions");
    }
    boolean chain = java.util.Arrays.equals(parents, dev.dsd.pipeline.runtime.TreeShape.chain(parents.length));
    // for child scores the nodes (all positions after the root row) go as drafts, so a greedy row
    // carries each child's probability next to the argmax: adaptive verification reads how far one trails the other
    int[] nodes = !options.childScores() || sample || rows < 2 ? new int[0]
        : java.util.Arrays.copyOfRange(tokens, tokens.length - rows + 1, tokens.length);
    return await(send(keep, keepRows, tokens, chain ? null : parents, nodes, rows, sample, seed));
  }

  @Override
  public boolean runsTrees() {
    return true;
  }

  private long send(int keep, int[] keepRows, int[] tokens, int[] parents, int[] drafts, int rows,
      boolean sample, long seed) {
    if (closed) {
      throw new PipelineException("CLOSED", "the pipeline session is closed", null);
    }
    int kept = keep + keepRows.length;
    if ((long) kept + tokens.length > maxTokens) { // the caller's mistake, refused before any chunk goes
      throw new IllegalArgumentException("positions " + kept + ".." + (kept + tokens.length) + " exceed the session's "
          + maxTokens);
    }
    int[] cuts = PrefillChunks.cuts(tokens.length, rows, options.prefillChunk());
    for (int i = 0; i + 1 < cuts.length; i++) {
      boolean last = i + 2 == cuts.length;
      Round.Builder b = Round.newBuilder().setSessionId(id).setRound(++round).setKeep(i == 0 ? keep : kept + cuts[i])
          .setRows(last ? rows : 1);
      if (i == 0) {
        for (int r : keepRows) {
          b.addKeepRows(r);
        }
      }
      if (parents != null) {
        for (int p : dev.dsd.pipeline.runtime.TreeShape.chunk(parents, cuts[i], cuts[i + 1])) {
          b.addTreeParents(p + 1); // on the wire: 0 continues the cache
        }
      }
      for (int j = cuts[i]; j < cuts[i + 1]; j++) {
        b.addTokens(tokens[j]);
        if (penalties.active()) { // the last stage keeps the history its penalties need
          b.addPenaltyTokens(tokens[j]);
        }
      }
      if (last) {
        for (int d : drafts) {
          b.addDrafts(d);
        }
        if (sample) {
          b.setSample(true).setSampleSeed(seed);
        }
      }
      first.send(PipelineMessage.newBuilder().setRound(b).build());
      if (Timeline.on()) {
        Timeline.event(id, round, "entry", "sent", "keep=" + b.getKeep() + " positions=" + b.getTokensCount()
            + " drafts=" + b.getDraftsCount());
      }
    }
    if (sample) {
      sampledRounds.add(round);
    }
    return round;
  }

  /** The answer of round {@code r}; answers of earlier rounds (prefill chunks, cancelled rounds) are passed over. */
  @Override
  public TargetScores await(long r) {
    RoundResult res = await(r, true).getResult();
    Timeline.event(id, r, "entry", "awaited", "");
    lastTimings = res.getTimingsList();
    Long at = arrivals.remove(r);
    lastArrival = at == null ? -1 : at;
    arrivals.headMap(r).clear();
    TargetScores scores = scores(res);
    boolean sample = sampledRounds.remove(r);
    sampledRounds.headSet(r).clear();
    if (!sample) {
      return scores;
    }
    int[] draws = new int[res.getRowsCount()];
    for (int i = 0; i < draws.length; i++) {
      draws[i] = res.getRows(i).getSampled();
    }
    try {
      return new dev.dsd.verification.tree.SampledScores(scores, draws);
    } catch (IllegalArgumentException e) {
      throw new PipelineException("BAD_REPLY", "the last stage sent malformed draws: " + e.getMessage(), lastPeer);
    }
  }

  @Override
  public void cancel(long afterRound, int keep) {
    if (closed) {
      throw new PipelineException("CLOSED", "the pipeline session is closed", null);
    }
    first.send(PipelineMessage.newBuilder().setCancel(dev.dsd.node.pipeline.proto.Cancel.newBuilder().setSessionId(id)
        .setAfterRound(afterRound).setKeep(keep)).build());
    log.debug("cancel sent session={} afterRound={} keep={} lastSent={}", id, afterRound, keep, round);
    Timeline.event(id, afterRound, "entry", "cancel-sent", "keep=" + keep + " lastSent=" + round);
  }

  @Override
  public long lastBottleneckNanos() {
    long most = -1;
    for (StageTiming t : lastTimings) {
      most = Math.max(most, t.getComputeMicros() * 1000L);
    }
    return most;
  }

  @Override
  public long lastAnswerNanos() {
    return lastArrival;
  }

  @Override
  public long lastQueueNanos() {
    long sum = 0;
    for (StageTiming t : lastTimings) {
      sum += t.getQueueMicros() * 1000L;
    }
    return sum;
  }

  @Override
  public int lastBatchRows() {
    int most = 1;
    for (StageTiming t : lastTimings) {
      most = Math.max(most, t.getBatchRows());
    }
    return most;
  }

  private TargetScores scores(RoundResult res) {
    int vocab = res.getVocab();
    if (res.hasLogits()) {
      return new LogitScores(Activations.decodeLogits(res.getLogits(), vocab), vocab, options.temperature(), options.topP());
    }
    int n = res.getRowsCount();
    int[] argmax = new int[n];
    int[][] ids = new int[n][];
    double[][] probs = new double[n][];
    for (int i = 0; i < n; i++) {
      Row row = res.getRows(i);
      argmax[i] = row.getArgmax();
      if (row.getDenseCount() > 0) {
        probs[i] = row.getDenseList().stream().mapToDouble(Double::doubleValue).toArray();
      } else {
        ids[i] = row.getIdsList().stream().mapToInt(Integer::intValue).toArray();
        probs[i] = new double[row.getProbsCount()];
        for (int j = 0; j < probs[i].length; j++) {
          probs[i][j] = row.getProbs(j);
        }
      }
    }
    try {
      return new SparseScores(vocab, argmax, ids, probs);
    } catch (IllegalArgumentException e) {
      throw new PipelineException("BAD_REPLY", "the last stage sent malformed scores: " + e.getMessage(), lastPeer);
    }
  }

  /** The next message for round {@code r} (0: the open), or the error that ended the session. */
  private PipelineMessage await(long r, boolean countBytes) {
    long deadline = System.nanoTime() + options.timeout().toNanos();
    while (true) {
      PipelineMessage m;
      try {
        m = inbox.poll(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new PipelineException("INTERRUPTED", "interrupted while waiting for the pipeline", null);
      }
      if (m == null) {
        throw new PipelineException("TIMEOUT", "no answer from the pipeline within " + options.timeout().toMillis()
            + " ms (round " + r + ")", null);
      }
      if (m.hasError()) {
        var e = m.getError();
        PeerId peer = e.getPeerId().isEmpty() ? null : PeerId.fromBytes(e.getPeerId().toByteArray());
        throw new PipelineException(e.getCode().name(), "stage " + (peer == null ? "?" : peer) + ": " + e.getMessage(),
            peer);
      }
      if (countBytes && m.hasResult()) { // cancelled rounds' answers crossed the links too
        long stageOut = 0;
        for (StageTiming t : m.getResult().getTimingsList()) {
          stageOut += t.getBytesOut();
        }
        stageBytes.addAndGet(stageOut);
      }
      if (r == 0 ? m.hasOpened() : m.hasResult() && m.getResult().getRound() == r) {
        return m;
      }
      deadline = System.nanoTime() + options.timeout().toNanos(); // an earlier round answered: each gets the timeout
      // a late answer to an earlier round (after a timeout) is of no use any more
    }
  }

  @Override
  public List<String> route() {
    return route.describe();
  }

  @Override
  public long bytesSent() {
    return (first == null ? 0 : first.bytesSent()) + stageBytes.get();
  }

  @Override
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    service.unregister(this);
    MessageStream<PipelineMessage> f = first;
    if (f != null) {
      f.send(PipelineMessage.newBuilder().setClose(dev.dsd.node.pipeline.proto.CloseSession.newBuilder()
          .setSessionId(id)).build());
      f.close();
    }
    MessageStream<PipelineMessage> b = back;
    if (b != null) {
      b.close();
    }
  }

  /**
   * One of the session's two streams. A stage that passes on an error closes its stream right after
   * it; that close says nothing new, and reporting it would blame the messenger (the failover would
   * then avoid a healthy peer).
   */
  private final class FromStream implements MessageStream.Listener<PipelineMessage> {
    private final String which;
    private boolean erred; // only touched on the stream's own serial executor

    FromStream(String which) {
      this.which = which;
    }

    @Override
    public void onMessage(MessageStream<PipelineMessage> s, PipelineMessage m) {
      erred |= m.hasError();
      if (m.hasResult() && arrivals.size() < 4096) { // bounded: a peer cannot grow it without end
        arrivals.put(m.getResult().getRound(), System.nanoTime());
        Timeline.event(id, m.getResult().getRound(), "entry", "answered", "");
      }
      inbox.add(m);
    }

    @Override
    public void onClosed(MessageStream<PipelineMessage> s, Throwable cause) {
      if (!closed && !erred) {
        inbox.add(PipelineProtocol.error(dev.dsd.node.pipeline.proto.Error.Code.STAGE_FAILED, id, "the " + which + " "
            + s.remote() + " closed the stream" + (cause == null ? "" : ": " + PipelineProtocol.rootMessage(cause)),
            s.remote(), round));
      }
    }
  }
}
