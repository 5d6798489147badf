package dev.dsd.node.draft;

import dev.dsd.node.draft.proto.Accepted;
import dev.dsd.node.draft.proto.Close;
import dev.dsd.node.draft.proto.Distribution;
import dev.dsd.node.draft.proto.DraftMessage;
import dev.dsd.node.draft.proto.Drafts;
import dev.dsd.node.draft.proto.Open;
import dev.dsd.node.draft.proto.Propose;
import dev.dsd.node.generate.Drafter;
import dev.dsd.node.wire.MessageStream;
import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.multiaddr.Multiaddr;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The entry's side of one generation on a draft node. {@link #accepted} only notes the target's
 * verdict; the next {@link #propose} carries every verdict since the last one together with the
 * request, so a round costs one message each way. Any failure leaves the drafter failed: the
 * node's state may have moved past what this side knows, so later calls throw the same
 * {@link DraftException} at once, and {@link DraftException#draftNodeLost} tells the entry whether
 * to carry on without speculation.
 */
public final class RemoteDrafter implements Drafter {
  private static final Logger log = LoggerFactory.getLogger(RemoteDrafter.class);

  private final DraftClient client;
  private final PeerId peer;
  private final List<Multiaddr> addrs;
  private final String modelId;
  private final double temperature;
  private final double topP;
  private final long seed;
  private final int capacity;
  private final int usable;
  private final String id = UUID.randomUUID().toString();
  private final LinkedBlockingQueue<Object> inbox = new LinkedBlockingQueue<>(); // DraftMessage or DraftException
  private final List<Accepted> verdicts = new ArrayList<>();
  private volatile MessageStream<DraftMessage> stream;
  private volatile boolean closed;
  private DraftException failed;
  private double[][] lastDistributions;
  private int vocab;
  private long seq;
  private int lastBatchRows;
  private long lastComputeMicros;

  RemoteDrafter(DraftClient client, PeerId peer, List<Multiaddr> addrs, String modelId, double temperature, double topP,
      long seed, int capacity, int usable) {
    this.client = client;
    this.peer = peer;
    this.addrs = List.copyOf(addrs);
    this.modelId = modelId;
    this.temperature = temperature;
    this.topP = topP;
    this.seed = seed;
    this.capacity = capacity;
    this.usable = usable;
  }

  public String sessionId() {
    return id;
  }

  /** Rows of the largest batch the last proposal's steps ran in (1: it ran alone). */
  public int lastBatchRows() {
    return lastBatchRows;
  }

  public long lastComputeMicros() {
    return lastComputeMicros;
  }

  /** Connects, sends the prompt and waits until the draft node has cached it. */
  @Override
  public void start(int[] prompt) {
    guard();
    try {
      if (!addrs.isEmpty()) {
        client.host().peerStore().addAddrs(peer, addrs);
      }
      try {
        client.host().newStream(peer, List.of(DraftProtocol.ID), st -> stream = MessageStream.attach(st,
            DraftProtocol.CODEC, client.pool(), new Replies())).get(client.timeout().toMillis(), TimeUnit.MILLISECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new DraftException(DraftException.INTERRUPTED, "interrupted while connecting", peer);
      } catch (Exception e) {
        throw new DraftException(DraftException.UNREACHABLE, "cannot open " + DraftProtocol.ID + ": " + rootMessage(e),
            peer);
      }
      Open.Builder o = Open.newBuilder().setSessionId(id).setModelId(modelId).setTemperature(temperature).setTopP(topP)
          .setSeed(seed).setMaxTokens(capacity).setUsableVocab(usable);
      for (int t : prompt) {
        o.addPrompt(t);
      }
      send(DraftMessage.newBuilder().setOpen(o).build());
      vocab = ((DraftMessage) await(0)).getOpened().getVocab();
      log.debug("remote draft open peer={} session={} prompt={} vocab={}", peer, id, prompt.length, vocab);
    } catch (DraftException e) {
      throw fail(e);
    }
  }

  @Override
  public int[] propose(int k) {
    guard();
    try {
      long s = ++seq;
      Propose.Builder p = Propose.newBuilder().setSessionId(id).setSeq(s).setK(k).addAllAccepted(verdicts);
      verdicts.clear();
      send(DraftMessage.newBuilder().setPropose(p).build());
      Drafts d = ((DraftMessage) await(s)).getDrafts();
      return read(d, k);
    } catch (DraftException e) {
      throw fail(e);
    }
  }

  private int[] read(Drafts d, int k) {
    boolean sampled = temperature > 0;
    if (d.getTokensCount() != k || d.getDistributionsCount() != (sampled ? k : 0)) {
      throw new DraftException(DraftException.BAD_REPLY, "asked for " + k + " drafts, got " + d.getTokensCount()
          + " tokens and " + d.getDistributionsCount() + " distributions", peer);
    }
    int[] tokens = new int[k];
    lastDistributions = sampled ? new double[k][] : null;
    for (int i = 0; i < k; i++) {
      tokens[i] = d.getTokens(i);
      if (tokens[i] < 0 || tokens[i] >= vocab) {
        throw new DraftException(DraftException.BAD_REPLY, "draft token " + Integer.toUnsignedString(tokens[i])
            + " is outside the vocabulary of " + vocab, peer);
      }
      if (sampled) {
        lastDistributions[i] = dense(d.getDistributions(i));
        if (!(lastDistributions[i][tokens[i]] > 0)) {
          throw new DraftException(DraftException.BAD_REPLY, "draft " + i + " has no probability in its own distribution",
              peer);
        }
      }
    }
    lastBatchRows = d.getBatchRows();
    lastComputeMicros = d.getComputeMicros();
    return tokens;
  }

  private double[] dense(Distribution q) {
    double[] p = new double[vocab];
    if (q.getIdsCount() == 0) {
      if (q.getProbsCount() != vocab) {
        throw new DraftException(DraftException.BAD_REPLY, "a dense distribution of " + q.getProbsCount()
            + " probabilities for a vocabulary of " + vocab, peer);
      }
      for (int i = 0; i < vocab; i++) {
        p[i] = q.getProbs(i);
      }
      return p;
    }
    if (q.getIdsCount() != q.getProbsCount()) {
      throw new DraftException(DraftException.BAD_REPLY, q.getIdsCount() + " ids with " + q.getProbsCount()
          + " probabilities", peer);
    }
    for (int i = 0; i < q.getIdsCount(); i++) {
      int t = q.getIds(i);
      if (t < 0 || t >= vocab) {
        throw new DraftException(DraftException.BAD_REPLY, "distribution id " + Integer.toUnsignedString(t)
            + " is outside the vocabulary of " + vocab, peer);
      }
      p[t] = q.getProbs(i);
    }
    return p;
  }

  @Override
  public double[][] lastDistributions() {
    return lastDistributions;
  }

  /**
   * No: the draft node checks every verdict against its last proposal (DraftServer), so it cannot
   * draft past an open verdict and roll back; generations with a remote drafter run synchronously.
   */
  @Override
  public boolean pipelines() {
    return false;
  }

  @Override
  public void accepted(int contextBefore, int[] drafts, int n, int next) {
    verdicts.add(Accepted.newBuilder().setContextBefore(contextBefore).setDrafted(drafts.length).setKept(n)
        .setNext(next).build());
  }

  private void guard() {
    if (failed != null) {
      throw failed;
    }
    if (closed) {
      throw new DraftException(DraftException.CLOSED, "the drafter is closed", peer);
    }
  }

  private DraftException fail(DraftException e) {
    failed = e;
    log.debug("remote draft failed peer={} session={} code={}: {}", peer, id, e.code(), e.getMessage());
    return e;
  }

  private void send(DraftMessage m) {
    MessageStream<DraftMessage> s = stream;
    if (s == null || s.send(m) == 0) {
      Object pendingFailure = inbox.peek();
      throw pendingFailure instanceof DraftException e ? e
          : new DraftException(DraftException.GONE, "the stream to the draft node is closed", peer);
    }
  }

  /** The answer to request {@code s} (0: the open), or the failure that ended it. */
  private Object await(long s) {
    long deadline = System.nanoTime() + client.timeout().toNanos();
    while (true) {
      Object o;
      try {
        o = inbox.poll(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new DraftException(DraftException.INTERRUPTED, "interrupted while waiting for drafts", peer);
      }
      if (o == null) {
        throw new DraftException(DraftException.TIMEOUT, "no answer within " + client.timeout().toMillis()
            + " ms (request " + s + ")", peer);
      }
      if (o instanceof DraftException e) {
        throw e;
      }
      DraftMessage m = (DraftMessage) o;
      if (m.hasError() && (m.getError().getSeq() == s || m.getError().getSeq() == 0)) {
        throw new DraftException(m.getError().getCode().name(), "session " + id + ": " + m.getError().getMessage(), peer);
      }
      if (s == 0 ? m.hasOpened() : m.hasDrafts() && m.getDrafts().getSeq() == s) {
        return m;
      }
      // an answer to an earlier request that timed out is of no use now
    }
  }

  @Override
  public boolean lost(RuntimeException failure) {
    return !(failure instanceof DraftException d) || d.draftNodeLost();
  }

  @Override
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    MessageStream<DraftMessage> s = stream;
    if (s != null) {
      s.send(DraftMessage.newBuilder().setClose(Close.newBuilder().setSessionId(id)).build());
      s.close();
    }
  }

  static String rootMessage(Throwable t) {
    Throwable c = t;
    while (c.getCause() != null && c.getCause() != c) {
      c = c.getCause();
    }
    return c.getMessage() == null ? c.getClass().getSimpleName() : c.getMessage();
  }

  private final class Replies implements MessageStream.Listener<DraftMessage> {
    @Override
    public void onMessage(MessageStream<DraftMessage> from, DraftMessage m) {
      inbox.add(m);
    }

    @Override
    public void onClosed(MessageStream<DraftMessage> from, Throwable cause) {
      if (!closed) {
        inbox.add(new DraftException(DraftException.GONE, "the draft node closed the stream"
            + (cause == null ? "" : ": " + rootMessage(cause)), peer));
      }
    }
  }
}
