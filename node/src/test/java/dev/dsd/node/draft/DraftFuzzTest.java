package dev.dsd.node.draft;

import static dev.dsd.node.testing.Await.awaitTrue;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.TextFormat;
import dev.dsd.node.draft.proto.Accepted;
import dev.dsd.node.draft.proto.Close;
import dev.dsd.node.draft.proto.DraftMessage;
import dev.dsd.node.draft.proto.Drafts;
import dev.dsd.node.draft.proto.Error;
import dev.dsd.node.draft.proto.Open;
import dev.dsd.node.draft.proto.Opened;
import dev.dsd.node.draft.proto.Propose;
import dev.dsd.node.generate.GenerationRequest;
import dev.dsd.node.testing.Closer;
import dev.dsd.node.testing.FuzzTally;
import dev.dsd.node.testing.FuzzTally.Kind;
import dev.dsd.node.testing.HealthyLoop;
import dev.dsd.node.wire.FrameMangler;
import dev.dsd.node.wire.FrameText;
import dev.dsd.node.wire.RawStream;
import dev.dsd.node.wire.SerialExecutor;
import dev.dsd.p2p.host.NettyHost;
import dev.dsd.pipeline.checkpoint.Checkpoint;
import dev.dsd.pipeline.testing.TinyCheckpoint;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * Fuzzes {@code /dsd/draft/1.0.0} against a draft node while a healthy entry drafts on it. The
 * fuzzer holds a few sessions per stream, as an entry does, and keeps a model of each one's state
 * (accepted context, cached positions, pending tokens, the last proposal), from which an oracle
 * tells whether each frame must be answered or refused, and whether the stream must end. A
 * refused request must change nothing: the model assumes so, and the next good request would be
 * refused if the node had moved on. The healthy session shares the batcher's passes with the
 * fuzzer's and must get exactly the drafts it got undisturbed.
 *
 * <p>Reproduce with {@code -Ddsd.fuzz.seed=N}; {@code -Ddsd.fuzz.draftFrames=N} sends more.
 */
class DraftFuzzTest {
  static final long SEED = Long.getLong("dsd.fuzz.seed", 0x5EEDL);
  static final int FRAMES = Integer.getInteger("dsd.fuzz.draftFrames", 3_000);
  static final long ANSWER_MS = 10_000;
  static final int[] PROMPT = {11, 250, 3, 47, 47, 180, 9};

  @TempDir Path tmp;
  @RegisterExtension final Closer closer = new Closer();

  <T extends AutoCloseable> T keep(T c) {
    return closer.keep(c);
  }

  NettyHost host() {
    return closer.host();
  }

  @Test
  void everyMalformedFrameIsRefusedAndTheHealthyEntryDraftsAsBefore() throws Exception {
    Path dir = TinyCheckpoint.builder().layers(2).hidden(16).heads(2).kvHeads(1).maxPositions(256).seed(5)
        .writeTo(tmp.resolve("draft"));
    Checkpoint ck = keep(Checkpoint.open(dir));
    DraftServer server = keep(new DraftServer(host(), ck, DraftServer.Options.defaults().withThreads(1)));
    DraftClient client = keep(new DraftClient(host(), Duration.ofSeconds(30)));
    int usable = Math.min(ck.config().vocabSize(), ck.tokenizer().vocabSize());
    long escapedBefore = SerialExecutor.escapedFailures();

    Healthy healthy = new Healthy(client, server, usable);
    List<String> undisturbed = healthy.cycle();
    assertEquals(undisturbed, healthy.cycle(), "a new session with the same verdicts drafts the same");
    Thread loop = healthy.loop(undisturbed);

    Fuzzer fuzzer = new Fuzzer(host(), server, ck, healthy, new Random(SEED));
    long t0 = System.nanoTime();
    try {
      fuzzer.run(FRAMES);
    } finally {
      healthy.stop();
      loop.join(30_000);
      // one write: the node's log lines must not split the report
      System.out.println(String.format("draft fuzz seed=%d: %d fuzzed frames + %d valid in %d ms; "
          + "healthy entry %d cycles, %d proposals; %s%n%s", SEED, fuzzer.tally.fuzzed(), fuzzer.tally.total(Kind.VALID),
          (System.nanoTime() - t0) / 1_000_000, healthy.cycles.get(), healthy.proposals.get(), server.stats(),
          fuzzer.tally));
    }
    assertNull(healthy.failure.get(), "the healthy entry's drafts changed while the fuzzer ran (seed " + SEED + ")");
    assertTrue(healthy.cycles.get() >= 1, "the healthy entry completed cycles during the fuzz");

    fuzzer.closeAll();
    awaitTrue(() -> server.sessionCount() == 0, () -> server.sessionCount() + " draft sessions outlive their streams");
    // the per-peer count must have followed every close: the fuzzer's host can still open its full share
    fuzzer.openFullShare(DraftServer.Options.defaults().maxSessionsPerPeer());
    awaitTrue(() -> server.sessionCount() == 0, () -> server.sessionCount() + " draft sessions after the last stream");
    assertEquals(undisturbed, healthy.cycle(), "an entry that comes after the fuzz drafts as before");
    assertEquals(0, server.stats().internalFailures(), "batcher tasks threw: " + server.stats());
    assertEquals(0, SerialExecutor.escapedFailures() - escapedBefore, "stream handlers let exceptions escape");
    assertTrue(fuzzer.tally.fuzzed() >= FRAMES);
  }

  // ---------------------------------------------------------------------------------------------
  // The healthy entry

  /**
   * Greedy drafting through a {@link RemoteDrafter} with verdicts from a fixed schedule (the
   * drafts do not matter to it, so every cycle sends the same requests), until the session's
   * cache is nearly full; each cycle is a new session whose drafts must equal the first cycle's.
   * Exact equality holds although batching with the fuzzer's rows moves logits by up to ~2e-6: the
   * schedule is fixed, and its closest call between the top two drafts is a margin of 6.5e-3.
   */
  static final class Healthy extends HealthyLoop {
    static final int K = 4;
    static final int CAPACITY = 96;
    final DraftClient client;
    final DraftServer server;
    final int usable;
    final AtomicInteger proposals = new AtomicInteger();
    volatile String sessionId = "";

    Healthy(DraftClient client, DraftServer server, int usable) {
      super("entry proposal");
      this.client = client;
      this.server = server;
      this.usable = usable;
    }

    @Override
    public List<String> cycle() {
      List<String> out = new ArrayList<>();
      Random verdicts = new Random(3);
      try (RemoteDrafter d = client.drafter(server.host().peerId(), server.host().listenAddrs(), server.modelId(),
          GenerationRequest.greedy("", 1), CAPACITY, usable)) {
        sessionId = d.sessionId();
        d.start(PROMPT);
        int context = PROMPT.length;
        while (context + 2 * K <= CAPACITY) {
          int[] drafts = d.propose(K);
          proposals.incrementAndGet();
          out.add(Arrays.toString(drafts));
          int kept = verdicts.nextInt(K + 1);
          d.accepted(context, drafts, kept, verdicts.nextInt(usable));
          context += kept + 1;
        }
      }
      return out;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // What the fuzzer sees

  enum Outcome { ERROR, CLOSED, ANSWERED, SILENT }

  /** What a frame must get. */
  enum Expect {
    ANSWERED, // Opened or Drafts
    REFUSED, // an Error, and nothing changed
    SILENT, // a close: no reply, the session is gone
    FATAL // an Error, then the stream ends with every session on it
  }

  /** The oracle's verdict on a request, and whether the node takes its seq even if it refuses it. */
  record Verdict(Expect expect, boolean consumesSeq, String why) {}

  /** The fuzzer's model of one of its sessions, as ServedSession should hold it. */
  static final class Session {
    final String id;
    final Open open;
    final int usable;
    int context; // accepted tokens
    int cached; // positions in the KV cache
    int pending; // accepted tokens not yet cached
    int offered; // drafts of the last proposal still awaiting a verdict; 0 when none
    long lastSeq;

    /** A session as the node's Opened leaves it. */
    static Session opened(Open open, int vocab) {
      return new Session(open, open.getUsableVocab() == 0 ? vocab : Math.min(vocab, open.getUsableVocab()));
    }

    private Session(Open open, int usable) {
      this.id = open.getSessionId();
      this.open = open;
      this.usable = usable;
      this.context = open.getPromptCount();
      this.cached = context - 1; // the last prompt token waits for the first proposal
      this.pending = 1;
    }

    Session copy() {
      Session s = new Session(open, usable);
      s.context = context;
      s.cached = cached;
      s.pending = pending;
      s.offered = offered;
      s.lastSeq = lastSeq;
      return s;
    }

    /** Applies verdicts, all or none: what is wrong with them, or null once applied. */
    String apply(List<Accepted> updates) {
      Session after = copy();
      for (int i = 0; i < updates.size(); i++) {
        Accepted u = updates.get(i);
        long kept = Integer.toUnsignedLong(u.getKept());
        if (u.getContextBefore() != after.context) {
          return "update " + i + " context";
        }
        if (Integer.toUnsignedLong(u.getDrafted()) != after.offered) {
          return "update " + i + " drafted";
        }
        if (kept > u.getDrafted()) {
          return "update " + i + " kept";
        }
        if (Integer.toUnsignedLong(u.getNext()) >= usable) {
          return "update " + i + " next";
        }
        if (after.offered == 0) {
          after.pending++;
        } else {
          after.cached = (int) Math.min(after.context + kept, after.context + after.offered - 1);
          after.pending = kept == after.offered ? 2 : 1;
        }
        after.context += (int) kept + 1;
        after.offered = 0;
      }
      context = after.context;
      cached = after.cached;
      pending = after.pending;
      offered = after.offered;
      return null;
    }

    /** Positions the cache holds once k drafts are proposed from here: pending, then k-1 drafts. */
    long cacheAfter(long k) {
      return cached + pending + k - 1;
    }
  }

  /** One raw stream to the draft node and the fuzzer's sessions on it. */
  final class Conn {
    final RawStream<DraftMessage> raw;
    final LinkedBlockingQueue<Object> events = new LinkedBlockingQueue<>();
    final List<Session> sessions = new ArrayList<>();
    final java.util.ArrayDeque<String> history = new java.util.ArrayDeque<>(); // the stream's last frames, for failures

    void record(String frame) {
      history.addLast(frame.length() > 300 ? frame.substring(0, 300) + "..." : frame);
      if (history.size() > 6) {
        history.removeFirst();
      }
    }

    Conn(NettyHost from, DraftServer to) throws Exception {
      this.raw = RawStream.open(from, to.host().peerId(), to.host().listenAddrs(), DraftProtocol.ID, DraftMessage.parser(),
          events::add, Duration.ofSeconds(10));
    }

    Session byId(String id) {
      return sessions.stream().filter(s -> s.id.equals(id)).findFirst().orElse(null);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // The fuzzer

  final class Fuzzer {
    final NettyHost host;
    final DraftServer server;
    final Healthy healthy;
    final Random rnd;
    final FrameMangler mangler;
    final FuzzTally<Outcome> tally = new FuzzTally<>(Outcome.class);
    final List<Conn> conns = new ArrayList<>();
    final String modelId;
    final int vocab;
    final int maxPositions;
    final int maxK = DraftServer.Options.defaults().maxK();
    long seq; // every propose gets a new one, so a refusal that took its seq costs nothing later
    int cases;
    int frameNo;
    String lastFrame = "";
    String lastLabel = "none";
    String previousLabel = "none";

    Fuzzer(NettyHost host, DraftServer server, Checkpoint ck, Healthy healthy, Random rnd) {
      this.host = host;
      this.server = server;
      this.healthy = healthy;
      this.rnd = rnd;
      this.mangler = new FrameMangler(rnd, DraftProtocol.MAX_FRAME_BYTES);
      this.modelId = server.modelId();
      this.vocab = ck.config().vocabSize();
      this.maxPositions = ck.config().maxPositionEmbeddings();
    }

    /** Cases of the kind furthest behind its share ({@link FuzzTally#nextKind}). */
    void run(int frames) throws Exception {
      while (tally.fuzzed() < frames) {
        cases++;
        Kind kind = tally.nextKind();
        if (kind == Kind.RANDOM) {
          randomBytes();
        } else {
          sessions(kind);
        }
      }
    }

    void closeAll() {
      conns.forEach(c -> c.raw.close());
    }

    Conn connect() throws Exception {
      Conn c = new Conn(host, server);
      conns.add(c);
      if (conns.size() > 64) {
        conns.removeIf(x -> x.raw.isClosed());
      }
      return c;
    }

    // --- cases -----------------------------------------------------------------------------------

    /** Noise on a fresh stream or one with sessions, then a FIN: an error or a close, then the end. */
    void randomBytes() throws Exception {
      Conn c = connect();
      if (rnd.nextInt(3) == 0) {
        openSession(c);
      }
      FrameMangler.Noise noise = mangler.noise();
      terminal(c, Kind.RANDOM, noise.label() + (c.sessions.isEmpty() ? "" : " with sessions"), noise.bytes());
    }

    /** A stream with one to three sessions, good requests among field or byte mutations, then an end. */
    void sessions(Kind kind) throws Exception {
      Conn c = connect();
      int want = 1 + rnd.nextInt(3);
      for (int i = 0; i < want; i++) {
        openSession(c);
      }
      int steps = 5 + rnd.nextInt(30);
      for (int i = 0; i < steps && !c.raw.isClosed(); i++) {
        if (c.sessions.isEmpty()) {
          openSession(c);
        }
        Session s = c.sessions.get(rnd.nextInt(c.sessions.size()));
        if (rnd.nextInt(10) < 3) {
          DraftMessage p = goodPropose(s);
          if (p == null) { // the session is full: a good close, and the proof that it is gone
            send(c, Kind.VALID, "close of a full session", close(s.id));
            send(c, Kind.FIELD, "propose after close", propose(s.id, ++seq, 1, List.of()));
          } else {
            send(c, Kind.VALID, "propose", p);
          }
        } else if (kind == Kind.FIELD) {
          Mutation m = mutateField(c, s);
          send(c, Kind.FIELD, m.label(), m.message());
        } else {
          // few sessions per stream: the node's per-peer limit must never be what refuses an open
          DraftMessage base = rnd.nextInt(5) == 0 && c.sessions.size() < 5
              ? DraftMessage.newBuilder().setOpen(goodOpen()).build() : goodPropose(s);
          if (base == null) {
            continue;
          }
          FrameMangler.Mangled mg = mangler.mangle(base.toByteArray(), 10);
          String label = mg.label() + " " + base.getBodyCase().name().toLowerCase();
          if (mg.terminal()) {
            terminal(c, Kind.BYTES, label, mg.bytes());
          } else {
            sendBytes(c, Kind.BYTES, label, mg.body());
          }
        }
      }
      if (!c.raw.isClosed()) {
        switch (rnd.nextInt(3)) {
          case 0 -> {
            for (Session s : List.copyOf(c.sessions)) {
              send(c, Kind.VALID, "close", close(s.id));
            }
            c.raw.close();
          }
          case 1 -> c.raw.close(); // gone without a word: the node must free every session on the stream
          default -> {
            c.raw.finish();
            expectClosed(c, "a stream the fuzzer finished");
          }
        }
      }
    }

    /** Opens {@code n} sessions on one stream: all must open, however many the fuzzer opened before. */
    void openFullShare(int n) throws Exception {
      Conn c = connect();
      for (int i = 0; i < n; i++) {
        openSession(c);
      }
      c.raw.close();
    }

    void openSession(Conn c) throws Exception {
      send(c, Kind.VALID, "open", DraftMessage.newBuilder().setOpen(goodOpen()).build());
    }

    // --- good requests ---------------------------------------------------------------------------

    Open.Builder goodOpen() {
      int promptLength = 1 + rnd.nextInt(12);
      Open.Builder o = Open.newBuilder().setSessionId("fuzz-" + cases + "-" + Long.toHexString(rnd.nextLong()))
          .setModelId(modelId).setMaxTokens(promptLength + 8 + rnd.nextInt(120)).setTopP(1);
      for (int i = 0; i < promptLength; i++) {
        o.addPrompt(rnd.nextInt(vocab));
      }
      if (rnd.nextInt(4) == 0) {
        o.setTemperature(0.3 + rnd.nextDouble()).setTopP(0.2 + 0.8 * rnd.nextDouble()).setSeed(rnd.nextLong());
      }
      if (rnd.nextInt(4) == 0) {
        o.setUsableVocab(1 + rnd.nextInt(vocab));
      }
      return o;
    }

    /** Verdicts on the last proposal (and maybe rounds without drafts) and a window that fits; null when full. */
    DraftMessage goodPropose(Session s) {
      Session after = s.copy();
      List<Accepted> updates = new ArrayList<>();
      if (after.offered > 0 || rnd.nextInt(4) == 0) {
        int kept = after.offered == 0 ? 0 : rnd.nextInt(after.offered + 1);
        updates.add(verdict(after.context, after.offered, kept, rnd.nextInt(after.usable)));
        after.apply(updates.subList(updates.size() - 1, updates.size()));
      }
      for (int extra = rnd.nextInt(6) == 0 ? 1 + rnd.nextInt(3) : 0; extra > 0; extra--) {
        updates.add(verdict(after.context, 0, 0, rnd.nextInt(after.usable)));
        after.apply(updates.subList(updates.size() - 1, updates.size()));
      }
      long room = s.open.getMaxTokens() - after.cacheAfter(1);
      if (room < 0) {
        return null;
      }
      int k = 1 + rnd.nextInt((int) Math.min(maxK, room + 1));
      return propose(s.id, ++seq, k, updates);
    }

    static Accepted verdict(int contextBefore, int drafted, int kept, int next) {
      return Accepted.newBuilder().setContextBefore(contextBefore).setDrafted(drafted).setKept(kept).setNext(next)
          .build();
    }

    static DraftMessage propose(String id, long seq, int k, List<Accepted> updates) {
      return DraftMessage.newBuilder().setPropose(Propose.newBuilder().setSessionId(id).setSeq(seq).setK(k)
          .addAllAccepted(updates)).build();
    }

    static DraftMessage close(String id) {
      return DraftMessage.newBuilder().setClose(Close.newBuilder().setSessionId(id)).build();
    }

    // --- field mutations -------------------------------------------------------------------------

    record Mutation(String label, DraftMessage message) {}

    /** A request wrong in one field the label names; the oracle still decides what it must get. */
    Mutation mutateField(Conn c, Session s) {
      Open.Builder o = goodOpen();
      DraftMessage good = goodPropose(s);
      Propose.Builder p = good == null ? propose(s.id, ++seq, 1, List.of()).getPropose().toBuilder()
          : good.getPropose().toBuilder();
      String label;
      switch (rnd.nextInt(22)) {
        case 0 -> {
          o.setModelId(new String[] {"", modelId + "0", modelId.substring(1)}[rnd.nextInt(3)]);
          return open("open of another model", o);
        }
        case 1 -> {
          o.setSessionId(new String[] {"", "s".repeat(DraftProtocol.MAX_SESSION_ID_CHARS + 1)}[rnd.nextInt(2)]);
          return open("open with an empty or too long id", o);
        }
        case 2 -> {
          o.setSessionId(s.id);
          return open("open of a session already on the stream", o);
        }
        case 3 -> {
          o.clearPrompt();
          return open("open with an empty prompt", o);
        }
        case 4 -> {
          o.setPrompt(rnd.nextInt(o.getPromptCount()), new int[] {vocab, vocab + 1 + rnd.nextInt(1000), -1,
              Integer.MIN_VALUE}[rnd.nextInt(4)]);
          return open("open with a prompt token outside the vocabulary", o);
        }
        case 5 -> {
          o.setMaxTokens(new int[] {o.getPromptCount() - 1, maxPositions + 1, -1, Integer.MIN_VALUE}[rnd.nextInt(4)]);
          return open("open with max_tokens outside prompt..context", o);
        }
        case 6 -> {
          o.setTemperature(new double[] {-1, Double.NaN, Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY}[rnd.nextInt(4)]);
          return open("open with a temperature not finite >= 0", o);
        }
        case 7 -> {
          o.setTopP(new double[] {0, -0.5, 1.5, Double.NaN}[rnd.nextInt(4)]);
          return open("open with top_p outside (0, 1]", o);
        }
        case 8 -> {
          o.setUsableVocab(new int[] {vocab + 1, vocab + rnd.nextInt(1 << 20), -1, Integer.MIN_VALUE}[rnd.nextInt(4)]);
          return open("open with usable_vocab beyond the vocabulary", o);
        }
        case 9 -> {
          String[] ids = {healthy.sessionId, "", "fuzz-nobody", s.id + "x"};
          p.setSessionId(ids[rnd.nextInt(ids.length)]);
          label = "propose for a session not on the stream";
        }
        case 10 -> {
          p.setK(new int[] {0, maxK + 1, -1, Integer.MIN_VALUE}[rnd.nextInt(4)]);
          label = "propose with k outside 1..max";
        }
        case 11 -> {
          p.setSeq(new long[] {s.lastSeq, s.lastSeq - 1, 0, Long.MIN_VALUE, -1}[rnd.nextInt(5)]);
          label = "propose with a seq not after the last";
        }
        case 12 -> {
          p.clearAccepted();
          for (int i = 0; i <= DraftProtocol.MAX_UPDATES; i++) {
            p.addAccepted(verdict(s.context + i, 0, 0, 1));
          }
          label = "propose with too many updates";
        }
        case 13 -> {
          p.clearAccepted().addAccepted(verdict(s.context + (rnd.nextBoolean() ? 1 : -1) * (1 + rnd.nextInt(5)),
              s.offered, 0, 1));
          label = "update with the wrong context";
        }
        case 14 -> {
          p.clearAccepted().addAccepted(verdict(s.context, s.offered + (s.offered > 0 && rnd.nextBoolean() ? -1 : 1),
              0, 1));
          label = "update judging another number of drafts";
        }
        case 15 -> {
          p.clearAccepted().addAccepted(verdict(s.context, s.offered, new int[] {s.offered + 1, -1, Integer.MIN_VALUE,
              Integer.MIN_VALUE + 1 + rnd.nextInt(100)}[rnd.nextInt(4)], 1));
          label = "update keeping more than was drafted";
        }
        case 16 -> {
          p.clearAccepted().addAccepted(verdict(s.context, s.offered, 0, new int[] {s.usable, vocab + rnd.nextInt(1000),
              -1, Integer.MIN_VALUE}[rnd.nextInt(4)]));
          label = "update with a next token outside the vocabulary";
        }
        case 17 -> {
          Session after = s.copy();
          after.apply(p.getAcceptedList());
          p.setK((int) Math.min(maxK, s.open.getMaxTokens() - after.cacheAfter(1) + 2 + rnd.nextInt(3)));
          label = "propose with a window beyond the session's cache";
        }
        case 18 -> {
          p.clearAccepted().addAccepted(verdict(s.context, s.offered, 0, 1)).addAccepted(verdict(s.context + 1, 1, 0, 1));
          label = "second update judging drafts";
        }
        case 20 -> {
          o.setSessionId(healthy.sessionId); // sessions belong to their stream: this one is the fuzzer's own
          return open("open with the healthy entry's session id", o);
        }
        case 19 -> {
          String[] ids = {healthy.sessionId, "fuzz-nobody", ""};
          return new Mutation("close of a session not on the stream", close(ids[rnd.nextInt(ids.length)]));
        }
        default -> {
          DraftMessage[] others = {DraftMessage.getDefaultInstance(),
              DraftMessage.newBuilder().setOpened(Opened.newBuilder().setSessionId(s.id)).build(),
              DraftMessage.newBuilder().setDrafts(Drafts.newBuilder().setSessionId(s.id).setSeq(seq).addTokens(1)).build(),
              DraftProtocol.error(Error.Code.INTERNAL, s.id, 0, "fuzz")};
          return new Mutation("not a request", others[rnd.nextInt(others.length)]);
        }
      }
      return new Mutation(label, DraftMessage.newBuilder().setPropose(p).build());
    }

    Mutation open(String label, Open.Builder o) {
      return new Mutation(label, DraftMessage.newBuilder().setOpen(o).build());
    }

    // --- the oracle ------------------------------------------------------------------------------

    /**
     * What the node must do with one whole frame of {@code body} on stream {@code c}: the
     * protocol's rules written out again, independently of DraftServer. Counts and ids are unsigned.
     */
    Verdict judge(Conn c, byte[] body) {
      DraftMessage m;
      try {
        m = DraftMessage.parseFrom(body);
      } catch (InvalidProtocolBufferException e) {
        return new Verdict(Expect.FATAL, false, "unparseable");
      }
      switch (m.getBodyCase()) {
        case OPEN -> {
          Open o = m.getOpen();
          String why = openProblem(o);
          if (why == null && c.byId(o.getSessionId()) != null) {
            why = "already open";
          }
          return new Verdict(why == null ? Expect.ANSWERED : Expect.REFUSED, false, why);
        }
        case PROPOSE -> {
          Propose p = m.getPropose();
          Session s = c.byId(p.getSessionId());
          long k = Integer.toUnsignedLong(p.getK());
          if (s == null || k < 1 || k > maxK || p.getAcceptedCount() > DraftProtocol.MAX_UPDATES) {
            return new Verdict(Expect.REFUSED, false, "unknown session, k or updates");
          }
          if (p.getSeq() <= s.lastSeq) {
            return new Verdict(Expect.REFUSED, false, "seq");
          }
          Session after = s.copy();
          String why = after.apply(p.getAcceptedList());
          if (why == null && after.cacheAfter(k) > s.open.getMaxTokens()) {
            why = "window beyond the cache";
          }
          return new Verdict(why == null ? Expect.ANSWERED : Expect.REFUSED, true, why);
        }
        case CLOSE -> {
          boolean known = c.byId(m.getClose().getSessionId()) != null;
          return new Verdict(known ? Expect.SILENT : Expect.REFUSED, false, known ? null : "unknown session");
        }
        default -> {
          return new Verdict(Expect.REFUSED, false, "not a request");
        }
      }
    }

    String openProblem(Open o) {
      if (o.getSessionId().isEmpty() || o.getSessionId().length() > DraftProtocol.MAX_SESSION_ID_CHARS) {
        return "id";
      }
      if (o.getPromptCount() == 0) {
        return "prompt";
      }
      for (int t : o.getPromptList()) {
        if (Integer.toUnsignedLong(t) >= vocab) {
          return "prompt token";
        }
      }
      long max = Integer.toUnsignedLong(o.getMaxTokens());
      if (max < o.getPromptCount() || max > maxPositions) {
        return "max_tokens";
      }
      if (!(o.getTemperature() >= 0 && o.getTemperature() < Double.POSITIVE_INFINITY)
          || !(o.getTopP() > 0 && o.getTopP() <= 1)) {
        return "sampling";
      }
      if (Integer.toUnsignedLong(o.getUsableVocab()) > vocab) {
        return "usable_vocab";
      }
      if (!o.getModelId().equals(modelId)) {
        return "model";
      }
      return null;
    }

    // --- sending and judging ---------------------------------------------------------------------

    void send(Conn c, Kind kind, String label, DraftMessage m) throws Exception {
      sendBytes(c, kind, label, m.toByteArray());
    }

    /**
     * Sends one whole frame, checks its fate against the oracle and moves the model on: an
     * answered open or propose, a close, or the end of the stream.
     */
    void sendBytes(Conn c, Kind kind, String label, byte[] body) throws Exception {
      Verdict v = judge(c, body);
      frameNo++;
      previousLabel = lastLabel;
      lastLabel = label;
      lastFrame = FrameText.describe(body, DraftMessage.parser());
      c.raw.write(RawStream.frame(body));
      Outcome o;
      Object ev = null;
      if (v.expect() == Expect.SILENT) {
        o = Outcome.SILENT; // checked by whatever comes next: a propose for it is refused
      } else {
        ev = next(c, kind, label);
        o = outcome(ev, kind, label);
      }
      // a field variation the oracle finds right (a window the cap made fit, another stream's id) is valid
      boolean right = v.expect() == Expect.ANSWERED || v.expect() == Expect.SILENT;
      tally.add(kind == Kind.FIELD && right ? Kind.VALID : kind, label, o);
      String what = kind + " frame #" + frameNo + " (" + label + ", expected " + v.expect()
          + (v.why() == null ? "" : " for " + v.why()) + ", after " + previousLabel + ") got " + o
          + (ev instanceof RawStream.Reply<?> r ? " " + TextFormat.shortDebugString((DraftMessage) r.message()) : "")
          + ": " + lastFrame + " seed=" + SEED + "; earlier on this stream: " + c.history;
      c.record("#" + frameNo + " " + label + " " + TextFormat.shortDebugString(DraftMessage.parseFrom(
          v.expect() == Expect.FATAL ? new byte[0] : body)) + " -> " + o);
      DraftMessage sent = v.expect() == Expect.FATAL ? null : DraftMessage.parseFrom(body);
      switch (v.expect()) {
        case ANSWERED -> {
          if (o != Outcome.ANSWERED) {
            fail(what);
          }
          answered(c, sent, (DraftMessage) ((RawStream.Reply<?>) ev).message(), what);
        }
        case REFUSED -> {
          if (o != Outcome.ERROR) {
            fail(what);
          }
          if (v.consumesSeq()) {
            Session s = c.byId(sent.getPropose().getSessionId());
            s.lastSeq = sent.getPropose().getSeq();
            seq = Math.max(seq, s.lastSeq);
          }
        }
        case SILENT -> c.sessions.remove(c.byId(sent.getClose().getSessionId()));
        case FATAL -> {
          if (o != Outcome.ERROR) {
            fail(what);
          }
          expectClosed(c, what);
        }
      }
    }

    /** Checks an answer against the request and applies it to the model. */
    void answered(Conn c, DraftMessage sent, DraftMessage got, String what) {
      if (sent.hasOpen()) {
        Open o = sent.getOpen();
        assertTrue(got.hasOpened() && got.getOpened().getSessionId().equals(o.getSessionId())
            && got.getOpened().getVocab() == vocab, "not the open's answer: " + what);
        c.sessions.add(Session.opened(o, vocab));
        return;
      }
      Propose p = sent.getPropose();
      Session s = c.byId(p.getSessionId());
      Drafts d = got.getDrafts();
      boolean sampled = s.open.getTemperature() > 0;
      assertTrue(got.hasDrafts() && d.getSessionId().equals(s.id) && d.getSeq() == p.getSeq()
          && d.getTokensCount() == p.getK() && d.getDistributionsCount() == (sampled ? p.getK() : 0),
          "not the propose's answer: " + what);
      for (int t : d.getTokensList()) {
        assertTrue(t >= 0 && t < s.usable, "draft " + t + " outside the session's usable vocabulary: " + what);
      }
      s.apply(p.getAcceptedList());
      s.cached += s.pending + p.getK() - 1;
      s.offered = p.getK();
      s.lastSeq = p.getSeq();
      seq = Math.max(seq, s.lastSeq);
    }

    /** Bytes that are not one whole frame, then a FIN: the node must answer or close, and close. */
    void terminal(Conn c, Kind kind, String label, byte[] bytes) throws Exception {
      frameNo++;
      previousLabel = lastLabel;
      lastLabel = label;
      lastFrame = "raw " + FrameText.hex(bytes);
      c.raw.write(bytes);
      c.raw.finish();
      Outcome o = outcome(next(c, kind, label), kind, label);
      tally.add(kind, label, o);
      if (o != Outcome.CLOSED) {
        expectClosed(c, kind + " frame #" + frameNo + " (" + label + ") " + lastFrame + " seed=" + SEED);
      }
    }

    void expectClosed(Conn c, String what) throws InterruptedException {
      while (true) {
        Object ev = c.events.poll(ANSWER_MS, TimeUnit.MILLISECONDS);
        if (ev == null) {
          fail("the stream stayed open after " + what);
        }
        if (ev instanceof RawStream.Closed) {
          c.sessions.clear();
          return;
        }
        if (ev instanceof RawStream.Unreadable u) {
          fail("unreadable reply (" + u.why() + ") after " + what);
        }
      }
    }

    Object next(Conn c, Kind kind, String label) throws InterruptedException {
      Object ev = c.events.poll(ANSWER_MS, TimeUnit.MILLISECONDS);
      if (ev == null) {
        fail("no answer and no close within " + ANSWER_MS + " ms to " + kind + " frame #" + frameNo + " (" + label
            + ", after " + previousLabel + "): " + lastFrame + " seed=" + SEED);
      }
      return ev;
    }

    Outcome outcome(Object ev, Kind kind, String label) {
      if (ev instanceof RawStream.Closed) {
        return Outcome.CLOSED;
      }
      if (ev instanceof RawStream.Reply<?> r) {
        DraftMessage m = (DraftMessage) r.message();
        if (m.hasError() && m.getError().getCode() == Error.Code.INTERNAL) { // bad requests are for the checks to catch
          fail("the draft node failed on " + kind + " frame #" + frameNo + " (" + label + "): " + m.getError().getMessage()
              + "; " + lastFrame + " seed=" + SEED);
        }
        if (m.hasError()) {
          return Outcome.ERROR;
        }
        if (m.hasOpened() || m.hasDrafts()) {
          return Outcome.ANSWERED;
        }
      }
      fail("the draft node answered " + kind + " frame #" + frameNo + " (" + label + ") with " + ev + ": " + lastFrame
          + " seed=" + SEED);
      return null;
    }
  }
}
