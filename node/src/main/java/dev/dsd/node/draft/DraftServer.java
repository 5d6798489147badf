package dev.dsd.node.draft;

import dev.dsd.node.draft.proto.DraftMessage;
import dev.dsd.node.draft.proto.Error;
import dev.dsd.node.draft.proto.Open;
import dev.dsd.node.draft.proto.Propose;
import dev.dsd.node.wire.MessageStream;
import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.host.NettyHost;
import dev.dsd.pipeline.checkpoint.Checkpoint;
import dev.dsd.pipeline.model.ModelConfig;
import dev.dsd.pipeline.runtime.BatchRunner;
import dev.dsd.pipeline.runtime.RunnerOptions;
import dev.dsd.pipeline.runtime.RuntimeLimitException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Serves one draft model on {@code /dsd/draft/1.0.0} to many entries at once (one draft, many
 * target pipelines). Each stream carries the sessions of one entry; each session has its own KV
 * cache in a {@link BatchRunner}, and the {@link DraftBatcher} runs the draft steps of all sessions
 * that are proposing at the same time as one batched pass. A request that is wrong is answered
 * with an Error and changes nothing; other sessions never notice.
 */
public final class DraftServer implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(DraftServer.class);

  /**
   * @param maxSessions sessions open at once, over all entries
   * @param maxSessionsPerPeer sessions one entry may hold, so one peer cannot take every slot
   * @param kvBudgetBytes KV memory all sessions may reserve together
   * @param maxK the largest window one Propose may ask for
   * @param maxBatchRows rows one pass may carry
   * @param threads ONNX Runtime threads per pass (0: ORT chooses)
   * @param logEveryPasses one utilization line per this many passes (0: never)
   */
  public record Options(int maxSessions, int maxSessionsPerPeer, long kvBudgetBytes, int maxK, int maxBatchRows,
      int threads, int logEveryPasses) {
    public Options {
      if (maxSessions < 1 || maxSessionsPerPeer < 1 || kvBudgetBytes < 1 || maxK < 1 || maxBatchRows < 1
          || threads < 0 || logEveryPasses < 0) {
        throw new IllegalArgumentException("invalid draft server options: " + this);
      }
    }

    public static Options defaults() {
      return new Options(64, 16, RunnerOptions.DEFAULT_KV_BUDGET_BYTES, 32, 32, 0, 1000);
    }

    public Options withThreads(int t) {
      return new Options(maxSessions, maxSessionsPerPeer, kvBudgetBytes, maxK, maxBatchRows, t, logEveryPasses);
    }

    public Options withSessions(int total, int perPeer) {
      return new Options(total, perPeer, kvBudgetBytes, maxK, maxBatchRows, threads, logEveryPasses);
    }

    public Options withLogEvery(int passes) {
      return new Options(maxSessions, maxSessionsPerPeer, kvBudgetBytes, maxK, maxBatchRows, threads, passes);
    }
  }

  private final NettyHost host;
  private final String modelId;
  private final ModelConfig config;
  private final Options options;
  private final BatchRunner runner;
  private final DraftStats stats = new DraftStats();
  private final DraftBatcher batcher;
  private final ExecutorService pool;
  private final AutoCloseable owned;
  private final Set<Connection> connections = ConcurrentHashMap.newKeySet();
  private final AtomicLong kvIds = new AtomicLong();
  private final Map<PeerId, Integer> perPeer = new HashMap<>(); // batcher thread only
  private volatile boolean closed;

  /** Serves the checkpoint's model; the caller keeps the checkpoint open while the server runs. */
  public DraftServer(NettyHost host, Checkpoint checkpoint, Options options) {
    this(host, checkpoint, options, null);
  }

  private DraftServer(NettyHost host, Checkpoint ck, Options options, AutoCloseable owned) {
    this.host = host;
    this.modelId = ck.modelId();
    this.config = ck.config();
    this.options = options;
    this.owned = owned;
    this.runner = new BatchRunner(config, ck.weights(), new RunnerOptions(options.threads(), options.maxSessions(),
        options.kvBudgetBytes(), RunnerOptions.DEFAULT_IDLE_TIMEOUT));
    String node = host.peerId().toString();
    this.batcher = new DraftBatcher(runner, stats, options.maxBatchRows(), options.logEveryPasses(), node);
    AtomicInteger n = new AtomicInteger();
    // streams only parse and queue; the compute is on the batcher's thread
    this.pool = Executors.newFixedThreadPool(2, r -> {
      Thread t = new Thread(r, "dsd-draft-stream-" + n.incrementAndGet());
      t.setDaemon(true);
      return t;
    });
    host.setStreamHandler(DraftProtocol.ID, st -> MessageStream.attach(st, DraftProtocol.CODEC, pool, new Connection()));
    log.info("draft server ready node={} model={} layers={} vocab={} maxSessions={} maxK={} maxBatchRows={}", node,
        modelId, config.numLayers(), config.vocabSize(), options.maxSessions(), options.maxK(), options.maxBatchRows());
  }

  /** Opens the checkpoint at {@code dir} and serves it; closing the server closes the checkpoint. */
  public static DraftServer load(NettyHost host, Path dir, Options options) {
    Checkpoint ck = Checkpoint.open(dir);
    try {
      return new DraftServer(host, ck, options, ck);
    } catch (RuntimeException e) {
      ck.close();
      throw e;
    }
  }

  public NettyHost host() {
    return host;
  }

  public String modelId() {
    return modelId;
  }

  public DraftStats stats() {
    return stats;
  }

  /** Sessions holding a cache now. */
  public int sessionCount() {
    return runner.sessionCount();
  }

  /** What is wrong with an Open that can be told without the batcher; null when nothing. */
  private String checkOpen(Open o) {
    String id = o.getSessionId();
    if (id.isEmpty() || id.length() > DraftProtocol.MAX_SESSION_ID_CHARS) {
      return "a session id has 1 to " + DraftProtocol.MAX_SESSION_ID_CHARS + " characters";
    }
    if (o.getPromptCount() == 0) {
      return "the prompt is empty";
    }
    int vocab = config.vocabSize();
    for (int t : o.getPromptList()) {
      if (t < 0 || t >= vocab) {
        return "prompt token id " + Integer.toUnsignedString(t) + " is outside the vocabulary of " + vocab;
      }
    }
    if (o.getMaxTokens() < o.getPromptCount() || o.getMaxTokens() > config.maxPositionEmbeddings()) {
      return "max_tokens " + o.getMaxTokens() + " must hold the " + o.getPromptCount() + "-token prompt and at most "
          + config.maxPositionEmbeddings() + " positions";
    }
    if (!(o.getTemperature() >= 0) || Double.isInfinite(o.getTemperature()) || !(o.getTopP() > 0 && o.getTopP() <= 1)) {
      return "temperature must be a finite number >= 0 and top_p in (0, 1]";
    }
    if (Integer.compareUnsigned(o.getUsableVocab(), vocab) > 0) { // uint32: 2^31 and up are negative ints
      return "usable_vocab " + Integer.toUnsignedString(o.getUsableVocab()) + " exceeds the vocabulary of " + vocab;
    }
    return null;
  }

  /** On the batcher: reserves the session's cache and prefills its prompt. */
  private void open(Connection conn, ServedSession s) {
    if (s.closed) {
      return;
    }
    int mine = perPeer.getOrDefault(s.owner, 0);
    try {
      if (mine >= options.maxSessionsPerPeer()) {
        throw new RuntimeLimitException("peer " + s.owner + " holds " + mine + " sessions, the limit per peer");
      }
      s.kv = runner.openSession(s.id + "#" + kvIds.incrementAndGet(), s.open.getMaxTokens());
    } catch (RuntimeLimitException e) {
      conn.sessions.remove(s.id, s);
      s.closed = true;
      refuse(s.stream, Error.Code.LIMIT, s.id, 0, e.getMessage());
      return;
    }
    perPeer.merge(s.owner, 1, Integer::sum);
    log.info("draft session open node={} peer={} session={} prompt={} maxTokens={} temperature={} sessions={}",
        host.peerId(), s.owner, s.id, s.open.getPromptCount(), s.open.getMaxTokens(), s.open.getTemperature(),
        runner.sessionCount());
    PrefillJob prefill = new PrefillJob(s, config.vocabSize());
    if (prefill.needed()) {
      batcher.activate(prefill);
    } else {
      prefill.finish();
    }
  }

  /** On the batcher: applies the target's verdicts, then starts k draft steps. */
  private void propose(ServedSession s, Propose p, long queuedAt) {
    if (s.closed) {
      return;
    }
    String problem = null;
    Error.Code code = Error.Code.BAD_REQUEST;
    if (s.kv == null) {
      code = Error.Code.UNKNOWN_SESSION;
      problem = "session " + s.id + " did not open";
    } else if (p.getSeq() <= s.lastSeq) {
      problem = "seq " + p.getSeq() + " is not after " + s.lastSeq;
    } else if (s.busy) {
      problem = "the previous request of session " + s.id + " is still running";
    } else {
      s.lastSeq = p.getSeq();
      problem = s.check(p.getAcceptedList());
      long needed = problem == null ? s.cacheAfter(p.getAcceptedList(), p.getK()) : 0;
      if (needed > s.kv.maxTokens()) { // checked before the verdicts are applied: a refusal changes nothing
        code = Error.Code.LIMIT;
        problem = "drafting " + p.getK() + " tokens needs " + needed + " positions, the session reserved "
            + s.kv.maxTokens();
      }
      if (problem == null) {
        s.accept(p.getAcceptedList());
      }
    }
    if (problem != null) {
      refuse(s.stream, code, s.id, p.getSeq(), problem);
      return;
    }
    s.busy = true;
    stats.proposal();
    batcher.activate(new ProposeJob(s, p.getSeq(), p.getK(), config.vocabSize(), queuedAt));
  }

  /** On the batcher: frees the session's cache; a running proposal is dropped. */
  private void end(ServedSession s, String reason) {
    if (s.closed) {
      return;
    }
    s.closed = true;
    batcher.cancel(s);
    if (s.kv != null) {
      s.kv.close();
      perPeer.computeIfPresent(s.owner, (k, v) -> v > 1 ? v - 1 : null);
      log.info("draft session closed node={} peer={} session={} reason={} sessions={} {}", host.peerId(), s.owner,
          s.id, reason, runner.sessionCount(), stats);
    }
  }

  private void refuse(MessageStream<DraftMessage> to, Error.Code code, String session, long seq, String message) {
    stats.error();
    log.debug("draft request refused node={} peer={} session={} seq={} code={}: {}", host.peerId(), to.remote(), session,
        seq, code, message);
    to.send(DraftProtocol.error(code, session, seq, message));
  }

  @Override
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    host.removeStreamHandler(DraftProtocol.ID);
    CountDownLatch done = new CountDownLatch(1);
    batcher.submit(() -> {
      for (Connection c : connections) {
        for (ServedSession s : new ArrayList<>(c.sessions.values())) {
          // seq 0: about the session, not a request, so whatever the entry waits for ends
          s.stream.send(DraftProtocol.error(Error.Code.SHUTTING_DOWN, s.id, 0, "the draft node is shutting down"));
          end(s, "node shutting down");
        }
      }
      done.countDown();
    });
    try {
      done.await(5, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    batcher.close();
    connections.forEach(c -> c.stream.close());
    runner.close();
    pool.shutdownNow();
    if (owned != null) {
      try {
        owned.close();
      } catch (Exception e) {
        log.warn("closing the draft checkpoint: {}", e.toString());
      }
    }
    log.info("draft server closed node={} {}", host.peerId(), stats);
  }

  /** One entry's stream and the sessions it opened on it. */
  private final class Connection implements MessageStream.Listener<DraftMessage> {
    final Map<String, ServedSession> sessions = new ConcurrentHashMap<>();
    volatile MessageStream<DraftMessage> stream;

    @Override
    public void onMessage(MessageStream<DraftMessage> from, DraftMessage m) {
      if (stream == null) {
        stream = from;
        connections.add(this);
      }
      if (closed) {
        from.send(DraftProtocol.error(Error.Code.SHUTTING_DOWN, "", 0, "the draft node is shutting down"));
        return;
      }
      switch (m.getBodyCase()) {
        case OPEN -> {
          Open o = m.getOpen();
          String problem = checkOpen(o);
          if (problem == null && !o.getModelId().equals(modelId)) {
            refuse(from, Error.Code.WRONG_MODEL, o.getSessionId(), 0, "this node drafts with model " + modelId + ", not "
                + o.getModelId());
            return;
          }
          if (problem == null && sessions.containsKey(o.getSessionId())) {
            problem = "session " + o.getSessionId() + " is already open on this stream";
          }
          if (problem != null) {
            refuse(from, Error.Code.BAD_REQUEST, o.getSessionId(), 0, problem);
            return;
          }
          ServedSession s = new ServedSession(o, from.remote(), from, config.vocabSize());
          s.busy = true; // until the prompt is cached
          sessions.put(s.id, s);
          batcher.submit(() -> open(this, s));
        }
        case PROPOSE -> {
          Propose p = m.getPropose();
          ServedSession s = sessions.get(p.getSessionId());
          if (s == null) {
            refuse(from, Error.Code.UNKNOWN_SESSION, p.getSessionId(), p.getSeq(), "no session " + p.getSessionId()
                + " on this stream");
          } else if (p.getK() < 1 || p.getK() > options.maxK()) {
            refuse(from, Error.Code.BAD_REQUEST, s.id, p.getSeq(), "k " + p.getK() + " is outside 1.." + options.maxK());
          } else if (p.getAcceptedCount() > DraftProtocol.MAX_UPDATES) {
            refuse(from, Error.Code.BAD_REQUEST, s.id, p.getSeq(), p.getAcceptedCount() + " updates in one request, at most "
                + DraftProtocol.MAX_UPDATES);
          } else {
            long now = System.nanoTime();
            batcher.submit(() -> propose(s, p, now));
          }
        }
        case CLOSE -> {
          ServedSession s = sessions.remove(m.getClose().getSessionId());
          if (s == null) {
            refuse(from, Error.Code.UNKNOWN_SESSION, m.getClose().getSessionId(), 0, "no session "
                + m.getClose().getSessionId() + " on this stream");
          } else {
            batcher.submit(() -> end(s, "closed by the entry"));
          }
        }
        default -> refuse(from, Error.Code.BAD_REQUEST, "", 0, "a draft node takes open, propose and close, not "
            + m.getBodyCase());
      }
    }

    @Override
    public void onClosed(MessageStream<DraftMessage> from, Throwable cause) {
      connections.remove(this);
      List<ServedSession> left = new ArrayList<>(sessions.values());
      sessions.clear();
      String reason = cause == null ? "stream closed" : "stream failed: " + cause;
      for (ServedSession s : left) {
        batcher.submit(() -> end(s, reason));
      }
    }
  }
}
