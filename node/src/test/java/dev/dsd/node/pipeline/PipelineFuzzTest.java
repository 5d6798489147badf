package dev.dsd.node.pipeline;

import dev.dsd.node.stage.StageServer;
import dev.dsd.node.stage.HostedShard;
import dev.dsd.node.entry.PipelineTargetPass;

import static dev.dsd.node.testing.Await.awaitTrue;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.TextFormat;
import dev.dsd.node.pipeline.proto.CloseSession;
import dev.dsd.node.pipeline.proto.DType;
import dev.dsd.node.pipeline.proto.Error;
import dev.dsd.node.pipeline.proto.Hop;
import dev.dsd.node.pipeline.proto.OpenSession;
import dev.dsd.node.pipeline.proto.Opened;
import dev.dsd.node.pipeline.proto.PipelineMessage;
import dev.dsd.node.pipeline.proto.Round;
import dev.dsd.node.pipeline.proto.RoundResult;
import dev.dsd.node.pipeline.proto.Tensor;
import dev.dsd.node.routing.Route;
import dev.dsd.node.testing.Closer;
import dev.dsd.node.testing.FuzzTally;
import dev.dsd.node.testing.FuzzTally.Kind;
import dev.dsd.node.testing.HealthyLoop;
import dev.dsd.node.wire.FrameMangler;
import dev.dsd.node.wire.FrameText;
import dev.dsd.node.wire.MessageStream;
import dev.dsd.node.wire.RawStream;
import dev.dsd.node.wire.SerialExecutor;
import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.crypto.Identity;
import dev.dsd.p2p.host.HostConfig;
import dev.dsd.p2p.host.NettyHost;
import dev.dsd.p2p.multiaddr.Multiaddr;
import dev.dsd.pipeline.model.ModelConfig;
import dev.dsd.pipeline.runtime.RunnerOptions;
import dev.dsd.pipeline.runtime.StageBatchRunner;
import dev.dsd.pipeline.runtime.StageKv;
import dev.dsd.pipeline.testing.TinyCheckpoint;
import dev.dsd.verification.acceptance.LogitScores;
import dev.dsd.verification.acceptance.TargetScores;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * Fuzzes {@code /dsd/pipeline/1.0.0} against a two-stage chain on loopback while a healthy
 * session generates through it. The fuzzer plays both neighbours of its own sessions: it writes
 * their upstream byte by byte and is their next stage or entry, so every frame has an observable
 * fate: an error reply, the stream closing, or its work arriving downstream. A local copy of each
 * stage's layers replays every round the fuzzer expects accepted, so a frame that was refused but
 * changed the cache anyway shows up in the very next round.
 *
 * <p>Reproduce a failure with {@code -Ddsd.fuzz.seed=N}; {@code -Ddsd.fuzz.frames=N} sends more.
 */
class PipelineFuzzTest {
  static final long SEED = Long.getLong("dsd.fuzz.seed", 0x5EEDL);
  static final int FRAMES = Integer.getInteger("dsd.fuzz.frames", 10_000);
  static final long ANSWER_MS = 10_000;
  static final int[] PROMPT = {5, 17, 99, 3, 250, 42, 7, 7, 120, 64};

  @TempDir Path tmp;
  @RegisterExtension final Closer closer = new Closer();
  /** The healthy session's id, which the fuzzer tries to use from its own streams. */
  String referenceId = "";

  <T extends AutoCloseable> T keep(T c) {
    return closer.keep(c);
  }

  @Test
  void everyMalformedFrameIsRefusedAndNoOtherSessionNotices() throws Exception {
    Path model = TinyCheckpoint.builder().layers(4).hidden(32).heads(4).kvHeads(2).maxPositions(256).seed(21)
        .writeTo(tmp.resolve("target"));
    Chain chain = chain(model);
    long escapedBefore = SerialExecutor.escapedFailures();

    Reference reference = keep(new Reference(chain));
    referenceId = reference.id();
    List<String> undisturbed = reference.cycle();
    List<String> again = reference.cycle();
    for (int i = 0; i < undisturbed.size(); i++) {
      assertTrue(sameRound(undisturbed.get(i), again.get(i)),
          "a cycle that starts by dropping the whole cache is the same again: " + again.get(i) + " vs " + undisturbed.get(i));
    }
    Thread healthy = reference.loop(undisturbed);

    Fuzzer fuzzer = new Fuzzer(chain, new Random(SEED));
    long t0 = System.nanoTime();
    try {
      fuzzer.run(FRAMES);
    } finally {
      reference.stop();
      healthy.join(30_000);
      // one write: the node's log lines must not split the report
      System.out.println(String.format("pipeline fuzz seed=%d: %d fuzzed frames + %d valid in %d ms; "
          + "healthy session %d cycles, %d rounds%n%s", SEED, fuzzer.tally.fuzzed(), fuzzer.tally.total(Kind.VALID),
          (System.nanoTime() - t0) / 1_000_000, reference.cycles.get(), reference.rounds.get(), fuzzer.tally));
    }
    assertNull(reference.failure.get(), "the healthy session's rounds changed while the fuzzer ran (seed " + SEED + ")");
    assertTrue(reference.cycles.get() >= 1, "the healthy session completed cycles during the fuzz");
    fuzzer.closeAll();

    // nothing the fuzzer opened outlives it: only the healthy session holds caches
    for (PipelineService stage : chain.stages()) {
      StageServer server = stage.stages().get(0);
      awaitTrue(() -> server.sessionCount() == 1, () -> "stage " + server.shard() + " holds " + server.sessionCount()
          + " sessions after the fuzz, not just the healthy one");
      assertEquals(1, server.shard().batch().sessions().size(), "KV caches of " + server.shard());
    }
    awaitTrue(() -> fuzzer.sink.streams.isEmpty(), () -> fuzzer.sink.streams.size()
        + " streams the stages opened to the fuzzer's sessions are still open");
    assertEquals(1, chain.entry().entrySessionCount());

    try (Reference fresh = new Reference(chain)) {
      assertEquals(undisturbed, fresh.cycle(), "a session opened after the fuzz is served as before");
    }
    reference.close();
    for (PipelineService stage : chain.stages()) {
      awaitTrue(() -> stage.stageSessionCount() == 0, () -> "stage sessions left after the healthy one closed");
    }
    assertEquals(0, SerialExecutor.escapedFailures() - escapedBefore, "handlers let exceptions escape");
    assertTrue(fuzzer.tally.fuzzed() >= FRAMES);
  }

  // ---------------------------------------------------------------------------------------------
  // The chain under test

  /** Stage A serves layers [0,2), stage B [2,4); the entry runs the healthy session; f is the fuzzer. */
  record Chain(PipelineService a, PipelineService b, PipelineService entry, NettyHost f, Route route, ModelConfig config,
      String modelId, int usableVocab, HostedShard mirrorA, HostedShard mirrorB) {
    List<PipelineService> stages() {
      return List.of(a, b);
    }
  }

  Chain chain(Path model) {
    RunnerOptions one = RunnerOptions.defaults().withThreads(1);
    NettyHost ha = keep(new NettyHost(Identity.generate(), HostConfig.loopback()).start());
    NettyHost hb = keep(new NettyHost(Identity.generate(), HostConfig.loopback()).start());
    NettyHost he = keep(new NettyHost(Identity.generate(), HostConfig.loopback()).start());
    NettyHost hf = keep(new NettyHost(Identity.generate(), HostConfig.loopback()).start());
    HostedShard sa = keep(HostedShard.load(model, 0, 2, one));
    HostedShard sb = keep(HostedShard.load(model, 2, 4, one));
    PipelineService a = keep(new PipelineService(ha, List.of(sa), 2));
    PipelineService b = keep(new PipelineService(hb, List.of(sb), 2));
    PipelineService e = keep(new PipelineService(he, List.of(), 2));
    Route route = new Route(sa.modelId(), List.of(new Route.Stage(ha.peerId(), ha.listenAddrs(), 0, 2),
        new Route.Stage(hb.peerId(), hb.listenAddrs(), 2, 4)), 0);
    // the same layers again, for replaying what the stages should have computed
    HostedShard ma = keep(HostedShard.load(model, 0, 2, one));
    HostedShard mb = keep(HostedShard.load(model, 2, 4, one));
    return new Chain(a, b, e, hf, route, sa.config(), sa.modelId(), sa.usableVocab(), ma, mb);
  }

  // ---------------------------------------------------------------------------------------------
  // The healthy session

  /**
   * Greedy speculative rounds with three random drafts each, from the prompt until the cache is
   * nearly full; every cycle starts by dropping the whole cache, so every cycle must give the same
   * scores as the first, round by round.
   */
  final class Reference extends HealthyLoop implements AutoCloseable {
    final PipelineTargetPass pass;
    final int vocab;
    final AtomicInteger rounds = new AtomicInteger();

    Reference(Chain c) {
      super("session round");
      this.vocab = c.usableVocab();
      this.pass = PipelineTargetPass.open(c.entry(), c.route(), 128,
          new PipelineTargetPass.Options(DType.F16, 0, 1, false, Duration.ofSeconds(30)));
    }

    String id() {
      return pass.sessionId();
    }

    @Override
    protected boolean same(String want, String got) {
      return sameRound(want, got);
    }

    @Override
    public List<String> cycle() {
      List<String> out = new ArrayList<>();
      Random drafts = new Random(99);
      TargetScores s = pass.run(0, PROMPT, new int[0], 1);
      out.add(fingerprint(s, new int[0]));
      int length = PROMPT.length;
      int next = s.argmax(0);
      while (length + 4 <= 120) {
        int[] d = {drafts.nextInt(vocab), drafts.nextInt(vocab), drafts.nextInt(vocab)};
        s = pass.run(length, new int[] {next, d[0], d[1], d[2]}, d, 4);
        rounds.incrementAndGet();
        out.add(fingerprint(s, d));
        int kept = 0;
        while (kept < d.length && s.argmax(kept) == d[kept]) {
          kept++;
        }
        length += 1 + kept;
        next = s.argmax(kept);
      }
      return out;
    }

    @Override
    public void close() {
      pass.close();
    }
  }

  /**
   * Everything acceptance reads of a round: the argmax of each row and each draft's probability
   * (compared by {@link #sameRound}, not as text: a stage batches the healthy session's rounds with
   * the fuzzer's, which moves the last bits with the padding, and any rounding of them to a fixed
   * number of digits flips where a value sits on a rounding boundary).
   */
  static String fingerprint(TargetScores s, int[] drafts) {
    StringBuilder b = new StringBuilder();
    for (int r = 0; r < s.rows(); r++) {
      b.append(s.argmax(r));
      if (r < drafts.length) {
        b.append('/').append(String.format("%.6e", s.probability(r, drafts[r])));
      }
      b.append(';');
    }
    return b.toString();
  }

  /** Same argmax in every row, and each draft probability within 0.1% (relative) of the undisturbed round's. */
  static boolean sameRound(String want, String got) {
    String[] a = want.split(";");
    String[] b = got.split(";");
    if (a.length != b.length) {
      return false;
    }
    for (int i = 0; i < a.length; i++) {
      String[] x = a[i].split("/");
      String[] y = b[i].split("/");
      if (x.length != y.length || !x[0].equals(y[0])) {
        return false;
      }
      if (x.length == 2) {
        double p = Double.parseDouble(x[1]);
        double q = Double.parseDouble(y[1]);
        if (Math.abs(p - q) > 1e-3 * Math.max(p, q)) {
          return false;
        }
      }
    }
    return true;
  }

  // ---------------------------------------------------------------------------------------------
  // What the fuzzer sees

  /** What became of one frame. */
  enum Outcome { ERROR, CLOSED, FORWARDED }


  /** A stage sent the fuzzer, as the session's next stage or entry, the work of a frame. */
  record Forwarded(PipelineMessage message) {}


  /**
   * The fuzzer's host answers the stages' streams to it: as the next stage of its sessions on A
   * and as the entry of its sessions on B. Each stream is tied to the session named by its first
   * message, so later messages reach that session's case whatever session id they carry.
   */
  static final class Sink implements MessageStream.Listener<PipelineMessage> {
    final Map<String, Consumer<Object>> cases = new ConcurrentHashMap<>();
    final Map<MessageStream<PipelineMessage>, Consumer<Object>> bound = new ConcurrentHashMap<>();
    final Set<MessageStream<PipelineMessage>> streams = ConcurrentHashMap.newKeySet();
    final AtomicInteger strays = new AtomicInteger();

    @Override
    public void onMessage(MessageStream<PipelineMessage> s, PipelineMessage m) {
      Consumer<Object> to = bound.get(s);
      if (to == null) {
        to = cases.get(sessionOf(m));
        if (to != null) {
          bound.put(s, to);
        }
      }
      if (to == null) {
        strays.incrementAndGet(); // late work of a case already over
      } else {
        to.accept(new Forwarded(m));
      }
    }

    @Override
    public void onClosed(MessageStream<PipelineMessage> s, Throwable cause) {
      bound.remove(s);
      streams.remove(s);
    }

    static String sessionOf(PipelineMessage m) {
      return switch (m.getBodyCase()) {
        case OPEN -> m.getOpen().getSessionId();
        case OPENED -> m.getOpened().getSessionId();
        case ROUND -> m.getRound().getSessionId();
        case RESULT -> m.getResult().getSessionId();
        case ERROR -> m.getError().getSessionId();
        case CLOSE -> m.getClose().getSessionId();
        default -> "";
      };
    }
  }

  // ---------------------------------------------------------------------------------------------
  // The fuzzer

  /** What the fuzzer expects of a frame sent on a live session. */
  enum Expect {
    ACCEPTED, // computed and passed on, the cache now holds it
    REFUSED, // an error reply, the session unchanged and still open
    ENDS, // the session and its stream end
    FATAL, // an error reply, then the stream ends (unreadable frames, a bad first message)
    ANY // an error and the end, or accepted: a mutated open the fuzzer does not judge
  }

  /** A frame made by a field mutation: its message, what was done to it, what it must get. */
  record Mutation(String label, PipelineMessage message, Expect expect) {}

  /** A fuzzer session: one stage's cache that the fuzzer feeds through a raw stream. */
  final class Live {
    final boolean first; // on stage A, which takes token ids; else on B, which takes hidden states
    final String id;
    final OpenSession open;
    final RawStream<PipelineMessage> raw;
    final LinkedBlockingQueue<Object> events;
    final StageKv mirror;
    long lastRound;
    int length;

    Live(boolean first, String id, OpenSession open, RawStream<PipelineMessage> raw, LinkedBlockingQueue<Object> events,
        StageKv mirror) {
      this.first = first;
      this.id = id;
      this.open = open;
      this.raw = raw;
      this.events = events;
      this.mirror = mirror;
    }

    int maxTokens() {
      return open.getMaxTokens();
    }
  }

  final class Fuzzer {
    final Chain c;
    final Random rnd;
    final Sink sink = new Sink();
    final FuzzTally<Outcome> tally = new FuzzTally<>(Outcome.class);
    final FrameMangler mangler;
    final ExecutorService sinkPool = Executors.newFixedThreadPool(2);
    final List<RawStream<PipelineMessage>> raws = new ArrayList<>();
    final List<PeerId> unreachable = List.of(Identity.generate().peerId(), Identity.generate().peerId());
    final int hidden;
    final int vocab;
    int cases;
    int frameNo;
    String lastFrame = "";
    String lastLabel = "none";
    String previousLabel = "none"; // a stage that ends a session late is seen at the frame after


    Fuzzer(Chain c, Random rnd) {
      this.c = c;
      this.rnd = rnd;
      this.mangler = new FrameMangler(rnd, PipelineProtocol.MAX_FRAME_BYTES);
      this.hidden = c.config().hiddenSize();
      this.vocab = c.config().vocabSize();
      keep(sinkPool::shutdownNow);
      c.f().setStreamHandler(PipelineProtocol.ID, st -> sink.streams.add(MessageStream.attach(st, PipelineProtocol.CODEC,
          sinkPool, sink)));
    }

    /** Cases of the kind furthest behind its share ({@link FuzzTally#nextKind}). */
    void run(int frames) throws Exception {
      while (tally.fuzzed() < frames) {
        cases++;
        Kind kind = tally.nextKind();
        switch (kind) {
          case RANDOM -> randomBytes();
          case FIELD -> {
            // a bad open costs a stream per frame, a session case gives a dozen frames: about 1 in 5 opens
            if (rnd.nextInt(4) != 0) {
              badFirstMessage();
            } else {
              session(Kind.FIELD);
            }
          }
          default -> {
            if (rnd.nextInt(8) == 0) {
              mangledOpen(rnd.nextBoolean());
            } else {
              session(Kind.BYTES);
            }
          }
        }
      }
    }

    void closeAll() {
      raws.forEach(RawStream::close);
    }

    // --- cases -----------------------------------------------------------------------------------

    /** Noise on a fresh stream or after a good open, then a FIN: it must end in an error or a close. */
    void randomBytes() throws Exception {
      boolean first = rnd.nextBoolean();
      Live s = rnd.nextInt(4) == 0 ? openLive(first) : null;
      LinkedBlockingQueue<Object> events = s == null ? new LinkedBlockingQueue<>() : s.events;
      RawStream<PipelineMessage> raw = s == null ? rawTo(first ? c.a() : c.b(), events) : s.raw;
      FrameMangler.Noise noise = mangler.noise();
      terminal(raw, events, Kind.RANDOM, noise.label() + (s == null ? "" : " in a session"), noise.bytes());
      endLive(s);
    }

    /** A fresh stream whose first message is wrong: an error, then the stream ends. */
    void badFirstMessage() throws Exception {
      boolean first = rnd.nextBoolean();
      if (rnd.nextInt(12) == 0) { // the entry's return path: only the last stage of a session may use it
        LinkedBlockingQueue<Object> events = new LinkedBlockingQueue<>();
        RawStream<PipelineMessage> raw = rawTo(c.entry(), events);
        Mutation m = forgedReturn();
        expectFrame(raw, events, Kind.FIELD, m.label(), m.message().toByteArray(), Expect.FATAL, null);
        return;
      }
      LinkedBlockingQueue<Object> events = new LinkedBlockingQueue<>();
      String id = newId();
      sink.cases.put(id, events::add);
      RawStream<PipelineMessage> raw = rawTo(first ? c.a() : c.b(), events);
      Mutation m = badOpen(first, id);
      Kind kind = m.expect() == Expect.ACCEPTED ? Kind.VALID : Kind.FIELD; // a variation that is still right
      Outcome o = expectFrame(raw, events, kind, m.label(), m.message().toByteArray(), m.expect(), null);
      if (o == Outcome.FORWARDED) { // a variation that is still right opened a session: done with it
        raw.close();
      }
      sink.cases.remove(id);
    }

    /** A mangled open on a fresh stream: refused and closed, or (still an open) perhaps accepted. */
    void mangledOpen(boolean first) throws Exception {
      LinkedBlockingQueue<Object> events = new LinkedBlockingQueue<>();
      String id = newId();
      RawStream<PipelineMessage> raw = rawTo(first ? c.a() : c.b(), events);
      FrameMangler.Mangled mg = mangler.mangle(PipelineMessage.newBuilder().setOpen(validOpen(first, id)).build()
          .toByteArray(), 4);
      String carried = mg.terminal() ? id : openedId(mg.body(), id);
      sink.cases.put(carried, events::add);
      if (mg.terminal()) {
        terminal(raw, events, Kind.BYTES, mg.label() + " open", mg.bytes());
      } else {
        Outcome o = expectFrame(raw, events, Kind.BYTES, mg.label() + " open", mg.body(), judgeFirst(mg.body()), null);
        if (o == Outcome.FORWARDED) {
          raw.close();
        }
      }
      sink.cases.remove(carried);
    }

    /** A session with good and fuzzed frames; every good round is replayed on the mirror. */
    void session(Kind kind) throws Exception {
      Live s = openLive(rnd.nextBoolean());
      send(s, Kind.VALID, "prefill", message(validRound(s, true)), Expect.ACCEPTED);
      int steps = 5 + rnd.nextInt(30);
      for (int i = 0; i < steps && !s.raw.isClosed(); i++) {
        if (rnd.nextInt(10) < 3) {
          send(s, Kind.VALID, "round", message(validRound(s, false)), Expect.ACCEPTED);
        } else if (kind == Kind.FIELD) {
          Mutation m = mutateField(s);
          send(s, Kind.FIELD, m.label(), m.message(), m.expect());
        } else {
          FrameMangler.Mangled mg = mangler.mangle(message(validRound(s, false)).toByteArray(), 10);
          if (mg.terminal()) {
            terminal(s.raw, s.events, Kind.BYTES, mg.label() + " round", mg.bytes());
          } else {
            sendBytes(s, Kind.BYTES, mg.label() + " round", mg.body());
          }
        }
      }
      if (!s.raw.isClosed()) {
        switch (rnd.nextInt(3)) {
          case 0 -> send(s, Kind.VALID, "close", close(s.id), Expect.ENDS);
          case 1 -> s.raw.close(); // gone without a word: the stage must free the session itself
          default -> {
            s.raw.finish(); // half-closed: nothing more will come
            expectClosed(s.events, "a stream the fuzzer finished");
          }
        }
      }
      endLive(s);
    }

    // --- sessions --------------------------------------------------------------------------------

    /** Opens a fuzzer session on stage A ({@code first}) or B, with a mirror of its cache. */
    Live openLive(boolean first) throws Exception {
      String id = newId();
      LinkedBlockingQueue<Object> events = new LinkedBlockingQueue<>();
      sink.cases.put(id, events::add);
      RawStream<PipelineMessage> raw = rawTo(first ? c.a() : c.b(), events);
      OpenSession open = validOpen(first, id);
      HostedShard mirror = first ? c.mirrorA() : c.mirrorB();
      Live s = new Live(first, id, open, raw, events,
          mirror.batch().openSession(id, "mirror", open.getMaxTokens()));
      expectFrame(raw, events, Kind.VALID, "open", PipelineMessage.newBuilder().setOpen(open).build().toByteArray(),
          Expect.ACCEPTED, s);
      return s;
    }

    void endLive(Live s) {
      if (s != null) {
        s.raw.close();
        s.mirror.close();
        sink.cases.remove(s.id);
      }
    }

    RawStream<PipelineMessage> rawTo(PipelineService to, LinkedBlockingQueue<Object> events) throws Exception {
      NettyHost h = to.host();
      RawStream<PipelineMessage> raw = RawStream.open(c.f(), h.peerId(), h.listenAddrs(), PipelineProtocol.ID,
          PipelineMessage.parser(), events::add, Duration.ofSeconds(10));
      raws.add(raw);
      if (raws.size() > 256) { // ended streams need no closing; keep the list short
        raws.removeIf(RawStream::isClosed);
      }
      return raw;
    }

    String newId() {
      return "fuzz-" + cases + "-" + Long.toHexString(rnd.nextLong());
    }

    Hop hop(NettyHost h, int from, int to) {
      Hop.Builder b = Hop.newBuilder().setPeerId(ByteString.copyFrom(h.peerId().toBytes())).setFromLayer(from)
          .setToLayer(to);
      h.listenAddrs().forEach(a -> b.addAddrs(ByteString.copyFrom(a.withoutPeer().toBytes())));
      return b.build();
    }

    /** An open the stage accepts: the fuzzer's host is the other stage and the entry. */
    OpenSession validOpen(boolean first, String id) {
      DType[] dtypes = {DType.F16, DType.F32, DType.BF16};
      OpenSession.Builder o = OpenSession.newBuilder().setSessionId(id).setModelId(c.modelId())
          .addChain(first ? hop(c.a().host(), 0, 2) : hop(c.f(), 0, 2))
          .addChain(first ? hop(c.f(), 2, 4) : hop(c.b().host(), 2, 4))
          .setEntryPeerId(ByteString.copyFrom(c.f().peerId().toBytes())).setMaxTokens(8 + rnd.nextInt(57))
          .setActivationDtype(dtypes[rnd.nextInt(3)]).setTemperature(rnd.nextInt(3) == 0 ? 0.5 + rnd.nextDouble() : 0)
          .setTopP(rnd.nextInt(3) == 0 ? 0.05 + 0.95 * rnd.nextDouble() : 1).setFullLogits(rnd.nextBoolean());
      c.f().listenAddrs().forEach(a -> o.addEntryAddrs(ByteString.copyFrom(a.withoutPeer().toBytes())));
      return o.build();
    }

    /** A round the session accepts, sometimes rolling back, sometimes filling the cache. */
    Round.Builder validRound(Live s, boolean prefill) {
      int keep = prefill || s.length == 0 ? 0 : rnd.nextInt(10) < 7 ? s.length : rnd.nextInt(s.length + 1);
      if (keep >= s.maxTokens()) {
        keep = 0;
      }
      int room = s.maxTokens() - keep;
      int t = 1 + rnd.nextInt(prefill || rnd.nextInt(10) == 0 ? room : Math.min(room, 5));
      int rows = 1 + rnd.nextInt(t);
      int drafts = rnd.nextInt(rows + 1);
      Round.Builder r = Round.newBuilder().setSessionId(s.id).setRound(s.lastRound + 1 + (rnd.nextInt(10) == 0
          ? rnd.nextInt(1000) : 0)).setKeep(keep).setRows(rows);
      for (int i = 0; i < drafts; i++) {
        r.addDrafts(rnd.nextInt(vocab));
      }
      if (s.first) {
        for (int i = 0; i < t; i++) {
          r.addTokens(rnd.nextInt(vocab));
        }
      } else {
        DType[] dtypes = {DType.F16, DType.F32, DType.BF16};
        r.setHidden(Activations.encode(gaussian(t * hidden), t, hidden, dtypes[rnd.nextInt(3)]));
      }
      return r;
    }

    float[] gaussian(int n) {
      float[] v = new float[n];
      for (int i = 0; i < n; i++) {
        v[i] = (float) (rnd.nextGaussian() * 2);
      }
      return v;
    }

    static PipelineMessage message(Round.Builder r) {
      return PipelineMessage.newBuilder().setRound(r).build();
    }

    static PipelineMessage close(String id) {
      return PipelineMessage.newBuilder().setClose(CloseSession.newBuilder().setSessionId(id)).build();
    }

    // --- field mutations -------------------------------------------------------------------------

    /** A round (or another message) on a live session, wrong in one field the fuzzer names. */
    Mutation mutateField(Live s) {
      Round good = validRound(s, false).build();
      Round.Builder r = good.toBuilder();
      int t = s.first ? good.getTokensCount() : good.getHidden().getShape(0);
      String label;
      switch (rnd.nextInt(s.first ? 20 : 25)) {
        case 0 -> {
          String[] ids = {referenceId, "", newId(), s.id + "x", s.id.substring(1)};
          int i = rnd.nextInt(ids.length);
          r.setSessionId(ids[i]);
          label = i == 0 ? "session id of the healthy session" : "wrong session id";
        }
        case 1 -> {
          long[] rounds = {s.lastRound, s.lastRound - 1 - rnd.nextInt(5), 0, Long.MIN_VALUE, -1};
          r.setRound(rounds[rnd.nextInt(rounds.length)]);
          label = "round not after the last";
        }
        case 2 -> {
          int[] keeps = {s.length + 1 + rnd.nextInt(8), Integer.MIN_VALUE + rnd.nextInt(1000), -1, s.maxTokens() + 1};
          r.setKeep(keeps[rnd.nextInt(keeps.length)]);
          label = "keep beyond the cache";
        }
        case 3 -> {
          int over = s.maxTokens() - s.length + 1 + rnd.nextInt(4);
          r.setKeep(s.length).setRows(1).clearDrafts();
          if (s.first) {
            r.clearTokens();
            for (int i = 0; i < over; i++) {
              r.addTokens(rnd.nextInt(vocab));
            }
          } else {
            r.setHidden(Activations.encode(gaussian(over * hidden), over, hidden, DType.F32));
          }
          label = "positions beyond max_tokens";
        }
        case 4 -> {
          r.setRows(new int[] {0, t + 1 + rnd.nextInt(3), -1}[rnd.nextInt(3)]);
          label = "rows outside 1..positions";
        }
        case 5 -> {
          r.clearDrafts().setRows(Math.min(t, 1 + rnd.nextInt(t)));
          for (int i = 0; i <= r.getRows(); i++) {
            r.addDrafts(rnd.nextInt(vocab));
          }
          label = "more drafts than rows";
        }
        case 6 -> {
          int[] bad = {vocab, vocab + rnd.nextInt(100_000), -1, Integer.MIN_VALUE};
          r.clearDrafts().setRows(t).addDrafts(bad[rnd.nextInt(bad.length)]);
          label = "draft token outside the vocabulary";
        }
        case 7 -> {
          return new Mutation("open on a live session", PipelineMessage.newBuilder().setOpen(s.open).build(),
              Expect.REFUSED);
        }
        case 8 -> {
          PipelineMessage[] others = {
              PipelineMessage.newBuilder().setResult(RoundResult.newBuilder().setSessionId(s.id).setRound(1)).build(),
              PipelineMessage.newBuilder().setOpened(Opened.newBuilder().setSessionId(s.id)).build(),
              PipelineProtocol.error(Error.Code.STAGE_FAILED, s.id, "fuzz"), PipelineMessage.getDefaultInstance()};
          return new Mutation("result, opened, error or nothing on a live session", others[rnd.nextInt(others.length)],
              Expect.REFUSED);
        }
        case 9 -> {
          String[] ids = {referenceId, newId(), ""};
          return new Mutation("close of another session", close(ids[rnd.nextInt(ids.length)]), Expect.REFUSED);
        }
        case 10 -> {
          r.setSessionId(referenceId).setRound(1_000_000 + rnd.nextInt(1000)).setKeep(0);
          label = "healthy session's id, rolled back to nothing";
        }
        case 11 -> label = badTreeParents(r, t);
        case 12 -> label = badKeepRows(r, s);
        case 13 -> {
          r.clearTreeParents();
          int n = t + (t > 1 && rnd.nextBoolean() ? -1 : 1);
          for (int i = 0; i < n; i++) {
            r.addTreeParents(i);
          }
          label = "tree parents not one per position";
        }
        case 14 -> {
          // a chain-shaped tree whose one draft, the last position, hangs under a position no row scores
          r.clearTreeParents().clearDrafts().setRows(1).addDrafts(rnd.nextInt(vocab));
          for (int i = 0; i < t; i++) {
            r.addTreeParents(i);
          }
          label = "tree draft tested at a row outside the scores";
        }
        default -> label = s.first ? firstStageField(r) : laterStageField(r, t);
      }
      return new Mutation(label, PipelineMessage.newBuilder().setRound(r).build(), Expect.REFUSED);
    }

    /** A token tree whose parent list is not a tree: a forward or self reference (a cycle), or garbage. */
    String badTreeParents(Round.Builder r, int t) {
      r.clearTreeParents();
      int at = rnd.nextInt(t);
      for (int i = 0; i < t; i++) {
        r.addTreeParents(i); // wire form: parent + 1, so i is the chain
      }
      int[] bad = {at + 1, at + 2 + rnd.nextInt(1000), -1, Integer.MIN_VALUE + rnd.nextInt(10)}; // self, later, 2^32-1, 2^31+
      r.setTreeParents(at, bad[rnd.nextInt(bad.length)]);
      return "tree parent not an earlier position";
    }

    /** Rows to keep that are not ascending cache positions at or after keep. */
    String badKeepRows(Round.Builder r, Live s) {
      r.clearKeepRows();
      switch (rnd.nextInt(3)) {
        case 0 -> {
          r.setKeep(0).addKeepRows(1).addKeepRows(0);
          return "kept rows descending";
        }
        case 1 -> {
          r.setKeep(0).addKeepRows(0).addKeepRows(0);
          return "kept rows repeated";
        }
        default -> {
          r.addKeepRows(s.length + rnd.nextInt(8));
          return "kept row beyond the cache";
        }
      }
    }

    /** Wrong inputs for the first stage, which takes token ids. */
    String firstStageField(Round.Builder r) {
      switch (rnd.nextInt(4)) {
        case 0 -> {
          int[] bad = {vocab, vocab + 1 + rnd.nextInt(1000), -1, Integer.MIN_VALUE + rnd.nextInt(10)};
          r.setTokens(rnd.nextInt(r.getTokensCount()), bad[rnd.nextInt(bad.length)]);
          return "token outside the vocabulary";
        }
        case 1 -> {
          r.clearTokens().setRows(1).clearDrafts();
          return "no tokens";
        }
        case 2 -> {
          r.setHidden(Activations.encode(gaussian(r.getTokensCount() * hidden), r.getTokensCount(), hidden, DType.F32));
          return "hidden states on the first stage";
        }
        default -> {
          r.clearTokens().setHidden(Activations.encode(gaussian(hidden), 1, hidden, DType.F32)).setRows(1).clearDrafts();
          return "only hidden states on the first stage";
        }
      }
    }

    /** Wrong hidden states for a later stage. */
    String laterStageField(Round.Builder r, int t) {
      Tensor h = r.getHidden();
      switch (rnd.nextInt(11)) {
        case 0 -> {
          r.addTokens(rnd.nextInt(vocab));
          return "token ids on a later stage";
        }
        case 1 -> {
          r.clearHidden();
          return "no hidden states";
        }
        case 2 -> {
          List<List<Integer>> shapes = List.of(List.of(t), List.of(t, hidden, 1), List.of(), List.of(t * hidden, 1),
              List.of(t, hidden + 1), List.of(t, hidden - 1), List.of(0, hidden), List.of(-1, hidden),
              List.of(Integer.MIN_VALUE + t, hidden), List.of(1_000_000, hidden));
          r.setHidden(h.toBuilder().clearShape().addAllShape(shapes.get(rnd.nextInt(shapes.size()))));
          return "hidden states of the wrong shape";
        }
        case 3 -> {
          r.setHidden(h.toBuilder().setDtypeValue(3 + rnd.nextInt(100)));
          return "unknown dtype";
        }
        case 4 -> {
          int width = h.getDtype() == DType.F32 ? 4 : 2;
          int size = h.getData().size();
          int[] sizes = {size - 1, size + 1, size - width, size + width, 0, size / 2};
          int n = Math.max(0, sizes[rnd.nextInt(sizes.length)]);
          byte[] data = Arrays.copyOf(h.getData().toByteArray(), n);
          r.setHidden(h.toBuilder().setData(ByteString.copyFrom(data)));
          return "hidden bytes that do not fill the shape";
        }
        case 5 -> {
          DType other = h.getDtype() == DType.F32 ? DType.F16 : DType.F32;
          r.setHidden(h.toBuilder().setDtype(other));
          return "dtype that does not match the bytes";
        }
        default -> {
          r.setHidden(withNonFinite(h));
          return "NaN or infinity in hidden states";
        }
      }
    }

    /** The same tensor with one value replaced by NaN or an infinity, in the tensor's own encoding. */
    Tensor withNonFinite(Tensor h) {
      byte[] data = h.getData().toByteArray();
      ByteBuffer b = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
      float[] specials = {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY};
      float v = specials[rnd.nextInt(3)];
      if (h.getDtype() == DType.F32) {
        b.putFloat(4 * rnd.nextInt(data.length / 4), v);
      } else {
        short bits = h.getDtype() == DType.F16 ? dev.dsd.pipeline.safetensors.Half.fromFloat(v)
            : dev.dsd.pipeline.safetensors.Half.bf16FromFloat(v);
        b.putShort(2 * rnd.nextInt(data.length / 2), bits);
      }
      return h.toBuilder().setData(ByteString.copyFrom(data)).build();
    }

    /** An open the stage must refuse, or one whose next hop cannot take it. */
    Mutation badOpen(boolean first, String id) {
      OpenSession good = validOpen(first, id);
      OpenSession.Builder o = good.toBuilder();
      Hop self = good.getChain(first ? 0 : 1);
      Hop other = good.getChain(first ? 1 : 0);
      String label;
      Expect expect = Expect.FATAL;
      switch (rnd.nextInt(24)) {
        case 0 -> {
          o.setModelId(new String[] {"", c.modelId() + "0", c.modelId().substring(1), "x".repeat(200)}[rnd.nextInt(4)]);
          label = "wrong model id";
        }
        case 1 -> {
          o.clearChain();
          label = "empty chain";
        }
        case 2 -> {
          o.clearChain().addChain(first ? self : other.toBuilder().setToLayer(1).build())
              .addChain(first ? other.toBuilder().setFromLayer(3).build() : self);
          label = "chain with a gap";
        }
        case 3 -> {
          o.clearChain().addChain(first ? self : other).addChain(first ? other.toBuilder().setToLayer(3).build() : self)
              .addChain(hop(c.f(), first ? 3 : 4, first ? 5 : 6));
          label = "chain past the last layer";
        }
        case 4 -> {
          o.clearChain().addChain(self.toBuilder().setFromLayer(0).setToLayer(4));
          label = "self given every layer";
        }
        case 5 -> {
          o.clearChain().addChain(first ? self : other);
          label = "chain ending early";
        }
        case 6 -> {
          o.clearChain().addChain(hop(c.f(), 0, 2)).addChain(hop(c.f(), 2, 4));
          label = "stage not in the chain";
        }
        case 7 -> {
          o.clearChain().addChain(first ? self.toBuilder().setToLayer(1).build() : other)
              .addChain(first ? other.toBuilder().setFromLayer(1).build() : self.toBuilder().setToLayer(3).build())
              .addChain(hop(c.f(), 3, 4));
          label = first ? "stage given part of its layers" : "stage given part of its layers at the end";
        }
        case 8 -> {
          o.clearChain().addChain(first ? self : other).addChain(first ? other : self).addChain(first ? other : self);
          label = "hop repeated";
        }
        case 9 -> {
          o.setMaxTokens(new int[] {0, c.config().maxPositionEmbeddings() + 1, -1, Integer.MIN_VALUE}[rnd.nextInt(4)]);
          label = "max_tokens outside the context";
        }
        case 10 -> {
          o.setActivationDtypeValue(3 + rnd.nextInt(50));
          label = "unknown activation dtype";
        }
        case 11 -> {
          double[] temps = {-1, Double.NaN, Double.NEGATIVE_INFINITY, Double.POSITIVE_INFINITY};
          o.setTemperature(temps[rnd.nextInt(temps.length)]);
          label = "temperature not a finite number >= 0";
        }
        case 12 -> {
          o.setTopP(new double[] {0, -0.5, 1.5, Double.NaN, Double.POSITIVE_INFINITY}[rnd.nextInt(5)]);
          label = "top_p outside (0, 1]";
        }
        case 13 -> {
          o.setSessionId(new String[] {"", "s".repeat(PipelineProtocol.MAX_SESSION_ID_CHARS + 1)}[rnd.nextInt(2)]);
          label = "session id empty or too long";
        }
        case 14 -> {
          o.setSessionId(referenceId);
          label = "open with the healthy session's id";
        }
        case 15 -> {
          if (first) {
            o.setChain(1, other.toBuilder().setPeerId(ByteString.copyFrom(mangler.bytes(rnd.nextInt(40)))));
          } else {
            o.setEntryPeerId(ByteString.copyFrom(mangler.bytes(1 + rnd.nextInt(40))));
          }
          label = first ? "garbage next hop peer id" : "garbage entry peer id";
        }
        case 16 -> {
          if (first) {
            o.setChain(1, other.toBuilder().addAddrs(ByteString.copyFrom(mangler.bytes(rnd.nextInt(30)))));
          } else {
            o.addEntryAddrs(ByteString.copyFrom(mangler.bytes(rnd.nextInt(30))));
          }
          label = first ? "garbage next hop address" : "garbage entry address";
          expect = Expect.ANY; // a few random bytes may spell a multiaddr, and the good ones still work
        }
        case 17 -> {
          if (first) {
            o.clearChain().addChain(self).addChain(hop(c.entry().host(), 2, 4));
          } else {
            o.setEntryPeerId(ByteString.copyFrom(c.a().host().peerId().toBytes()));
          }
          label = first ? "next hop serves no layers" : "entry that did not open it";
        }
        case 18 -> {
          PeerId nobody = unreachable.get(rnd.nextInt(unreachable.size()));
          Hop.Builder h = Hop.newBuilder().setPeerId(ByteString.copyFrom(nobody.toBytes())).setFromLayer(2).setToLayer(4);
          if (rnd.nextBoolean()) {
            h.addAddrs(ByteString.copyFrom(Multiaddr.parse("/ip4/127.0.0.1/tcp/1").toBytes()));
          }
          if (first) {
            o.setChain(1, h);
          } else {
            o.setEntryPeerId(h.getPeerId()).clearEntryAddrs().addAllEntryAddrs(h.getAddrsList());
          }
          label = first ? "unreachable next hop" : "unreachable entry";
        }
        case 19 -> {
          if (first) {
            // valid: only the last stage needs to know the entry
            return new Mutation("open without an entry at the first stage", PipelineMessage.newBuilder().setOpen(
                o.clearEntryPeerId().clearEntryAddrs()).build(), Expect.ACCEPTED);
          }
          o.clearEntryPeerId();
          label = "last stage without an entry";
        }
        case 20 -> {
          o.clearChain().addChain(self.toBuilder().setFromLayer(self.getToLayer()).setToLayer(self.getFromLayer()));
          label = "hop with from after to";
        }
        default -> {
          PipelineMessage[] firsts = {
              PipelineMessage.newBuilder().setRound(Round.newBuilder().setSessionId(referenceId).setRound(1 << 20)
                  .addTokens(1).setRows(1)).build(),
              close(referenceId), close(id), PipelineMessage.getDefaultInstance(),
              PipelineMessage.newBuilder().setResult(RoundResult.newBuilder().setSessionId(referenceId)).build(),
              PipelineMessage.newBuilder().setOpened(Opened.newBuilder().setSessionId(referenceId)).build(),
              PipelineProtocol.error(Error.Code.STAGE_FAILED, referenceId, "fuzz")};
          return new Mutation("first message not an open", firsts[rnd.nextInt(firsts.length)], Expect.FATAL);
        }
      }
      return new Mutation(label, PipelineMessage.newBuilder().setOpen(o).build(), expect);
    }

    /** Messages only the last stage of one of the entry's sessions may send it, from someone else. */
    Mutation forgedReturn() {
      PipelineMessage[] forged = {
          PipelineMessage.newBuilder().setOpened(Opened.newBuilder().setSessionId(referenceId)).build(),
          PipelineMessage.newBuilder().setResult(RoundResult.newBuilder().setSessionId(referenceId).setRound(1)
              .setVocab(vocab)).build(),
          PipelineProtocol.error(Error.Code.STAGE_FAILED, referenceId, "forged"),
          PipelineMessage.newBuilder().setOpen(validOpen(true, newId())).build()};
      return new Mutation("forged message to the entry", forged[rnd.nextInt(forged.length)], Expect.FATAL);
    }

    // --- the oracle ------------------------------------------------------------------------------

    /** What a live session must do with a whole frame of {@code body}. */
    Expect judge(Live s, byte[] body) {
      PipelineMessage m;
      try {
        m = PipelineMessage.parseFrom(body);
      } catch (InvalidProtocolBufferException e) {
        return Expect.FATAL;
      }
      return switch (m.getBodyCase()) {
        case ROUND -> problem(s, m.getRound()) == null ? Expect.ACCEPTED : Expect.REFUSED;
        case CLOSE -> m.getClose().getSessionId().equals(s.id) ? Expect.ENDS : Expect.REFUSED;
        default -> Expect.REFUSED;
      };
    }

    /** The session id of the open in {@code body}, if it parses as one. */
    String openedId(byte[] body, String otherwise) {
      try {
        PipelineMessage m = PipelineMessage.parseFrom(body);
        return m.hasOpen() ? m.getOpen().getSessionId() : otherwise;
      } catch (InvalidProtocolBufferException e) {
        return otherwise;
      }
    }

    /** A first message other than an open ends the stream; a mangled open may even be accepted. */
    Expect judgeFirst(byte[] body) {
      try {
        return PipelineMessage.parseFrom(body).hasOpen() ? Expect.ANY : Expect.FATAL;
      } catch (InvalidProtocolBufferException e) {
        return Expect.FATAL;
      }
    }

    /**
     * Why the session must refuse the round, or null when it must compute it: the protocol's
     * rules, written out again independently of StageServer. Counts and ids are unsigned.
     */
    String problem(Live s, Round r) {
      if (!r.getSessionId().equals(s.id)) {
        return "session id";
      }
      if (r.getRound() <= s.lastRound) {
        return "round";
      }
      long keep = Integer.toUnsignedLong(r.getKeep());
      if (keep > s.length) {
        return "keep";
      }
      long t;
      if (s.first) {
        if (r.hasHidden() || r.getTokensCount() == 0) {
          return "inputs";
        }
        for (int tok : r.getTokensList()) {
          if (Integer.toUnsignedLong(tok) >= vocab) {
            return "token";
          }
        }
        t = r.getTokensCount();
      } else {
        if (!r.hasHidden() || r.getTokensCount() > 0) {
          return "inputs";
        }
        Tensor h = r.getHidden();
        if (h.getShapeCount() != 2 || Integer.toUnsignedLong(h.getShape(1)) != hidden || h.getShape(0) == 0) {
          return "shape";
        }
        t = Integer.toUnsignedLong(h.getShape(0));
        if (keep + t > s.maxTokens()) {
          return "positions";
        }
        int width = switch (h.getDtype()) {
          case F32 -> 4;
          case F16, BF16 -> 2;
          default -> 0;
        };
        if (width == 0 || h.getData().size() != t * hidden * width) {
          return "bytes";
        }
        for (float v : values(h)) {
          if (!Float.isFinite(v)) {
            return "not finite";
          }
        }
      }
      if (keep + t > s.maxTokens()) {
        return "positions";
      }
      long rows = Integer.toUnsignedLong(r.getRows());
      if (rows < 1 || rows > t || r.getDraftsCount() > rows) {
        return "rows";
      }
      for (int d : r.getDraftsList()) {
        if (Integer.toUnsignedLong(d) >= vocab) {
          return "draft";
        }
      }
      return null;
    }

    /** The tensor's values, decoded here rather than by Activations so the oracle is independent. */
    float[] values(Tensor h) {
      ByteBuffer b = h.getData().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
      float[] out = new float[h.getData().size() / (h.getDtype() == DType.F32 ? 4 : 2)];
      for (int i = 0; i < out.length; i++) {
        out[i] = switch (h.getDtype()) {
          case F32 -> b.getFloat();
          case F16 -> dev.dsd.pipeline.safetensors.Half.toFloat(b.getShort());
          default -> Float.intBitsToFloat((b.getShort() & 0xFFFF) << 16);
        };
      }
      return out;
    }

    // --- sending and judging ---------------------------------------------------------------------

    void send(Live s, Kind kind, String label, PipelineMessage m, Expect expect) throws Exception {
      expectFrame(s.raw, s.events, kind, label, m.toByteArray(), expect, s);
    }

    void sendBytes(Live s, Kind kind, String label, byte[] body) throws Exception {
      expectFrame(s.raw, s.events, kind, label, body, judge(s, body), s);
    }

    /**
     * Sends one whole frame and checks its fate against {@code expect}; an accepted round is
     * replayed on the mirror and what the stage passed on must equal the replay.
     */
    Outcome expectFrame(RawStream<PipelineMessage> raw, LinkedBlockingQueue<Object> events, Kind kind, String label,
        byte[] body, Expect expect, Live s) throws Exception {
      frameNo++;
      previousLabel = lastLabel;
      lastLabel = label;
      lastFrame = FrameText.describe(body, PipelineMessage.parser());
      raw.write(RawStream.frame(body));
      Object ev = next(events, kind, label);
      Outcome o = outcome(ev, kind, label);
      if (o == Outcome.FORWARDED && expect == Expect.ENDS) { // a close passed on down the chain before the end
        o = outcome(next(events, kind, label), kind, label);
      }
      tally.add(kind, label, o);
      String what = kind + " frame #" + frameNo + " (" + label + ", expected " + expect + ", after " + previousLabel
          + ") got " + o + ": " + lastFrame + " seed=" + SEED;
      if (ev instanceof RawStream.Reply<?> r) {
        what += " " + TextFormat.shortDebugString((PipelineMessage) r.message());
      }
      switch (expect) {
        case ACCEPTED -> {
          if (o != Outcome.FORWARDED) {
            fail(what);
          }
          PipelineMessage sent = PipelineMessage.parseFrom(body);
          PipelineMessage got = ((Forwarded) ev).message();
          if (sent.hasOpen()) {
            assertTrue(got.hasOpen() || got.hasOpened(), "an open passed on as " + got.getBodyCase() + ": " + what);
          } else if (s != null) {
            replay(s, sent.getRound(), got, what);
          }
        }
        case REFUSED -> {
          if (o != Outcome.ERROR) {
            fail(what);
          }
        }
        case ENDS -> {
          if (o != Outcome.CLOSED) {
            fail(what);
          }
        }
        case FATAL, ANY -> {
          if (o == Outcome.CLOSED || o == Outcome.FORWARDED && expect == Expect.FATAL) {
            fail(what);
          }
          if (o == Outcome.ERROR) {
            expectClosed(events, what);
          }
        }
      }
      return o;
    }

    /** Bytes that are not one whole frame, then a FIN: the stage must answer or close, and close. */
    void terminal(RawStream<PipelineMessage> raw, LinkedBlockingQueue<Object> events, Kind kind, String label,
        byte[] bytes) throws Exception {
      frameNo++;
      previousLabel = lastLabel;
      lastLabel = label;
      lastFrame = "raw " + FrameText.hex(bytes);
      raw.write(bytes);
      raw.finish();
      Object ev = next(events, kind, label);
      Outcome o = outcome(ev, kind, label);
      tally.add(kind, label, o);
      if (o != Outcome.CLOSED) {
        expectClosed(events, kind + " frame #" + frameNo + " (" + label + ") " + lastFrame + " seed=" + SEED);
      }
    }

    /** Waits for the stream's end, letting through work the stage passed on before it. */
    void expectClosed(LinkedBlockingQueue<Object> events, String what) throws InterruptedException {
      while (true) {
        Object ev = events.poll(ANSWER_MS, TimeUnit.MILLISECONDS);
        if (ev == null) {
          fail("the stream stayed open after " + what);
        }
        if (ev instanceof RawStream.Closed) {
          return;
        }
        if (ev instanceof RawStream.Unreadable u) {
          fail("unreadable reply (" + u.why() + ") after " + what);
        }
      }
    }

    Object next(LinkedBlockingQueue<Object> events, Kind kind, String label) throws InterruptedException {
      Object ev = events.poll(ANSWER_MS, TimeUnit.MILLISECONDS);
      if (ev == null) {
        fail("no answer and no close within " + ANSWER_MS + " ms to " + kind + " frame #" + frameNo + " (" + label + "): "
            + lastFrame + " seed=" + SEED);
      }
      return ev;
    }

    Outcome outcome(Object ev, Kind kind, String label) {
      if (ev instanceof RawStream.Closed) {
        return Outcome.CLOSED;
      }
      if (ev instanceof Forwarded) {
        return Outcome.FORWARDED;
      }
      if (ev instanceof RawStream.Reply<?> r && ((PipelineMessage) r.message()).hasError()) {
        Error e = ((PipelineMessage) r.message()).getError();
        if (e.getCode() == Error.Code.INTERNAL) { // a bad frame must be caught by the checks, not by a crash
          fail("a stage failed on " + kind + " frame #" + frameNo + " (" + label + "): " + e.getMessage() + "; "
              + lastFrame + " seed=" + SEED);
        }
        return Outcome.ERROR;
      }
      fail("a stage answered " + kind + " frame #" + frameNo + " (" + label + ") upstream with " + ev + ": " + lastFrame
          + " seed=" + SEED);
      return null;
    }

    /** Equal within two units in the last place of {@code dtype} (a rounding either side of a boundary). */
    static boolean close(float[] a, float[] b, DType dtype) {
      if (a.length != b.length) {
        return false;
      }
      double rel = switch (dtype) {
        case F16 -> 0x1p-9;
        case BF16 -> 0x1p-6;
        default -> 1e-4;
      };
      for (int i = 0; i < a.length; i++) {
        if (Math.abs(a[i] - b[i]) > 1e-3 + rel * Math.abs(b[i])) {
          return false;
        }
      }
      return true;
    }

    /** Applies an accepted round to the mirror and compares what the stage passed on with it. */
    void replay(Live s, Round r, PipelineMessage got, String what) {
      ModelConfig cfg = c.config();
      long keep = Integer.toUnsignedLong(r.getKeep());
      s.mirror.truncate((int) keep);
      s.lastRound = r.getRound();
      if (s.first) {
        int[] tokens = r.getTokensList().stream().mapToInt(Integer::intValue).toArray();
        float[] y = c.mirrorA().batch().forward(List.of(StageBatchRunner.Row.tokens(s.mirror, tokens)))[0];
        s.length = (int) keep + tokens.length;
        Tensor want = Activations.encode(y, tokens.length, cfg.hiddenSize(), s.open.getActivationDtype());
        Round fwd = got.getRound();
        // the stage may have run this round in one call with other sessions' rounds: padding to the
        // longest row changes summation order in the last bits, so values agree within rounding
        assertTrue(close(Activations.decode(fwd.getHidden(), cfg.hiddenSize()),
            Activations.decode(want, cfg.hiddenSize()), want.getDtype()) && fwd.getHidden().getShapeList().equals(want.getShapeList())
            && fwd.getHidden().getDtype() == want.getDtype() && fwd.getRound() == r.getRound() && fwd.getKeep() == r.getKeep()
            && fwd.getRows() == r.getRows() && fwd.getDraftsList().equals(r.getDraftsList())
            && fwd.getTokensCount() == 0 && fwd.getSessionId().equals(s.id), "stage A passed on other hidden states "
            + "than its layers compute from the session's accepted tokens: " + what);
        return;
      }
      int t = r.getHidden().getShape(0);
      float[] logits = c.mirrorB().batch().forward(List.of(StageBatchRunner.Row.hidden(s.mirror, values(r.getHidden()), t)))[0];
      s.length = (int) keep + t;
      int v = cfg.vocabSize();
      int rows = r.getRows();
      float[] last = Arrays.copyOfRange(logits, (t - rows) * v, t * v);
      for (int row = 0; row < rows; row++) {
        Arrays.fill(last, row * v + c.usableVocab(), (row + 1) * v, Float.NEGATIVE_INFINITY);
      }
      RoundResult res = got.getResult();
      assertTrue(res.getRound() == r.getRound() && res.getSessionId().equals(s.id), "result of another round: " + what);
      if (s.open.getFullLogits()) {
        assertEquals(DType.F32, res.getLogits().getDtype(), what);
        assertEquals(List.of(rows, v), res.getLogits().getShapeList(), what);
        float[] gotLogits = new float[rows * v];
        res.getLogits().getData().asReadOnlyByteBuffer().order(java.nio.ByteOrder.LITTLE_ENDIAN).asFloatBuffer()
            .get(gotLogits);
        for (int i = 0; i < last.length; i++) { // masked ids stay -inf; the rest agree within rounding
          assertTrue(last[i] == gotLogits[i] || Math.abs(last[i] - gotLogits[i]) <= 1e-3 + 1e-3 * Math.abs(last[i]),
              "stage B's logit " + i + ": " + gotLogits[i] + " vs " + last[i] + ": " + what);
        }
      } else {
        LogitScores want = new LogitScores(last, v, s.open.getTemperature(), s.open.getTopP());
        assertEquals(rows, res.getRowsCount(), what);
        for (int row = 0; row < rows; row++) {
          assertEquals(want.argmax(row), res.getRows(row).getArgmax(), "stage B's argmax of row " + row + ": " + what);
        }
      }
    }
  }
}
