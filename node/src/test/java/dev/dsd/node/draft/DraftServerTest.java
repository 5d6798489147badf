package dev.dsd.node.draft;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.node.draft.proto.Accepted;
import dev.dsd.node.draft.proto.Close;
import dev.dsd.node.draft.proto.DraftMessage;
import dev.dsd.node.draft.proto.Drafts;
import dev.dsd.node.draft.proto.Error;
import dev.dsd.node.draft.proto.Open;
import dev.dsd.node.draft.proto.Propose;
import dev.dsd.node.generate.DraftModel;
import dev.dsd.node.generate.Drafter;
import dev.dsd.node.generate.GenerationRequest;
import dev.dsd.node.generate.GenerationResult;
import dev.dsd.node.generate.LocalGenerator;
import dev.dsd.node.generate.LocalTargetPass;
import dev.dsd.node.generate.PromptCheck;
import dev.dsd.node.generate.RuleChoice;
import dev.dsd.node.generate.SpeculativeLoop;
import dev.dsd.node.generate.TargetPass;
import dev.dsd.node.generate.TokenSink;
import dev.dsd.node.entry.PipelineGenerator;
import dev.dsd.node.wire.MessageStream;
import dev.dsd.p2p.crypto.Identity;
import dev.dsd.p2p.host.HostConfig;
import dev.dsd.p2p.host.NettyHost;
import dev.dsd.pipeline.checkpoint.Checkpoint;
import dev.dsd.pipeline.model.ModelConfig;
import dev.dsd.pipeline.runtime.RunnerOptions;
import dev.dsd.pipeline.runtime.ShardRunner;
import dev.dsd.pipeline.testing.TinyCheckpoint;
import dev.dsd.verification.acceptance.AcceptanceRule;
import dev.dsd.verification.window.WindowPolicy;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import dev.dsd.node.testing.Closer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import dev.dsd.node.testing.Await;

/**
 * A draft node and entries on separate hosts (one JVM, loopback). The target runs locally at each
 * entry, so every difference in output would come from the remote drafts.
 */
class DraftServerTest {
  static final String[] PROMPTS = {"def f(x):", "the theory of ", "aaaa bbbb aaaa", "x = [1, 2, 3]\n", "import os"};
  @TempDir Path tmp;
  @RegisterExtension final Closer closer = new Closer();
  Path targetDir;
  Path randomDraftDir;
  Checkpoint target;
  ShardRunner targetRunner;
  LocalGenerator reference;

  @BeforeEach
  void models() throws Exception {
    targetDir = TinyCheckpoint.builder().layers(4).hidden(32).heads(4).kvHeads(2).maxPositions(256).seed(21)
        .writeTo(tmp.resolve("target"));
    randomDraftDir = TinyCheckpoint.builder().layers(2).hidden(16).heads(2).kvHeads(1).maxPositions(256).seed(5)
        .writeTo(tmp.resolve("draft"));
    target = keep(Checkpoint.open(targetDir));
    ModelConfig c = target.config();
    targetRunner = keep(new ShardRunner(c, target.weights(), 0, c.numLayers(), RunnerOptions.defaults().withThreads(1)));
    reference = keep(new LocalGenerator(targetDir, 1));
  }


  <T extends AutoCloseable> T keep(T c) {
    return closer.keep(c);
  }

  NettyHost host() {
    return closer.host();
  }

  DraftServer server(Path model, DraftServer.Options options) {
    return keep(DraftServer.load(host(), model, options.withThreads(1)));
  }

  DraftClient client(Duration timeout) {
    return keep(new DraftClient(host(), timeout));
  }

  static PipelineGenerator.DrafterFactory remote(DraftClient client, DraftServer server) {
    return client.factory(server.host().peerId(), server.host().listenAddrs(), server.modelId());
  }

  static GenerationRequest request(String prompt, int max, double temperature, double topP, long seed, int k) {
    return new GenerationRequest(prompt, max, temperature, topP, seed, k, false, List.of());
  }

  /** The speculative loop with the target in this process and drafts from {@code drafts}. */
  GenerationResult generate(GenerationRequest req, PipelineGenerator.DrafterFactory drafts) {
    ModelConfig c = target.config();
    int[] prompt = PromptCheck.encode(target.tokenizer(), req, c);
    int k = req.speculation();
    int capacity = Math.min(c.maxPositionEmbeddings(), prompt.length + req.maxTokens() + k);
    int usable = Math.min(c.vocabSize(), target.tokenizer().vocabSize());
    AcceptanceRule rule = new RuleChoice(target.tokenizer(), usable).rule(req);
    SpeculativeLoop loop = new SpeculativeLoop(target.tokenizer(), new HashSet<>(c.eosTokenIds()));
    try (TargetPass pass = new LocalTargetPass(targetRunner, targetRunner.openSession(UUID.randomUUID().toString(),
        "test", capacity), rule, usable);
        Drafter d = k == 0 ? null : drafts.create(req, capacity, usable)) {
      return loop.run(req, prompt, pass, d, rule, WindowPolicy.fixed(k), capacity, TokenSink.NONE,
          SpeculativeLoop.RoundListener.NONE);
    }
  }

  int[] targetAlone(String prompt, int max) {
    return reference.generate(GenerationRequest.greedy(prompt, max), TokenSink.NONE).tokenIds();
  }

  DraftModel localDraft(Path dir) {
    return keep(DraftModel.load(dir, target.config().vocabSize(), target.tokenizer().vocabSize(), 1));
  }

  @Test
  void greedyRemoteDraftsAreTheLocalDrafts() {
    DraftClient client = client(Duration.ofSeconds(20));
    // a random draft is almost always rejected, the target as its own draft always accepted
    for (Path dir : new Path[] {randomDraftDir, targetDir}) {
      DraftServer server = server(dir, DraftServer.Options.defaults());
      DraftModel local = localDraft(dir);
      long drafted = 0;
      long accepted = 0;
      for (String p : PROMPTS) {
        int[] want = targetAlone(p, 40);
        for (int k : new int[] {1, 3, 5}) {
          GenerationRequest req = request(p, 40, 0, 1, 0, k);
          GenerationResult viaLocal = generate(req, local::newDrafter);
          GenerationResult viaRemote = generate(req, remote(client, server));
          assertArrayEquals(want, viaLocal.tokenIds(), "local drafts, prompt '" + p + "' k=" + k);
          assertArrayEquals(want, viaRemote.tokenIds(), "remote drafts, prompt '" + p + "' k=" + k);
          // the same proposals: the same rounds, drafts and acceptances
          assertEquals(viaLocal.rounds(), viaRemote.rounds(), "rounds, prompt '" + p + "' k=" + k);
          assertEquals(viaLocal.acceptedTokens(), viaRemote.acceptedTokens(), "accepted, prompt '" + p + "' k=" + k);
          drafted += viaRemote.draftedTokens();
          accepted += viaRemote.acceptedTokens();
        }
      }
      assertTrue(drafted > 0, dir.toString());
      if (dir.equals(targetDir)) {
        assertTrue(accepted > drafted / 2, "the target drafting for itself is mostly accepted: " + accepted + "/" + drafted);
      }
      awaitZero(server);
    }
  }

  @Test
  void sampledRemoteDraftsAreTheLocalDrafts() {
    DraftClient client = client(Duration.ofSeconds(20));
    DraftServer server = server(targetDir, DraftServer.Options.defaults());
    DraftModel local = localDraft(targetDir);
    // top_p 1 sends whole-vocabulary distributions, a small top_p sends the support as ids
    for (double[] tp : new double[][] {{0.8, 1.0}, {0.6, 0.3}}) {
      for (long seed : new long[] {42, 7}) {
        GenerationRequest req = request("import os", 30, tp[0], tp[1], seed, 3);
        GenerationResult viaLocal = generate(req, local::newDrafter);
        GenerationResult viaRemote = generate(req, remote(client, server));
        assertArrayEquals(viaLocal.tokenIds(), viaRemote.tokenIds(), "temperature " + tp[0] + " top_p " + tp[1]);
        assertEquals(viaLocal.acceptedTokens(), viaRemote.acceptedTokens());
      }
    }
  }

  @Test
  void compactDistributionsAreDenseWhenThatIsSmaller() {
    double[] sparse = new double[100];
    sparse[3] = 0.5;
    sparse[70] = 0.5;
    assertEquals(List.of(3, 70), ProposeJob.compact(sparse).getIdsList());
    double[] flat = new double[100];
    java.util.Arrays.fill(flat, 0.01);
    assertEquals(0, ProposeJob.compact(flat).getIdsCount());
    assertEquals(100, ProposeJob.compact(flat).getProbsCount());
  }

  @Test
  void concurrentEntriesShareBatchedPasses() throws Exception {
    DraftServer server = server(targetDir, DraftServer.Options.defaults().withLogEvery(100));
    int entries = 3;
    int threadsPerEntry = 2;
    List<DraftClient> clients = new ArrayList<>();
    for (int i = 0; i < entries; i++) {
      clients.add(client(Duration.ofSeconds(30)));
    }
    Map<String, int[]> want = new ConcurrentHashMap<>();
    for (String p : PROMPTS) {
      want.put(p, targetAlone(p, 30));
    }
    int threads = entries * threadsPerEntry;
    CyclicBarrier start = new CyclicBarrier(threads);
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    List<Future<Integer>> done = new ArrayList<>();
    for (int t = 0; t < threads; t++) {
      DraftClient client = clients.get(t % entries);
      int first = t;
      done.add(pool.submit(() -> {
        start.await();
        int generations = 0;
        for (int i = 0; i < 4; i++) {
          String p = PROMPTS[(first + i) % PROMPTS.length];
          GenerationResult r = generate(request(p, 30, 0, 1, 0, 4), remote(client, server));
          assertArrayEquals(want.get(p), r.tokenIds(), "thread " + first + " prompt '" + p + "'");
          generations++;
        }
        return generations;
      }));
    }
    int total = 0;
    for (Future<Integer> f : done) {
      total += f.get(120, TimeUnit.SECONDS);
    }
    pool.shutdown();
    DraftStats s = server.stats();
    System.out.println("concurrent draft batching: " + threads + " entries' threads, " + total + " generations, " + s);
    assertEquals(threads * 4, total);
    assertTrue(s.rowsPerPass() > 1, "passes carried several sessions: " + s);
    assertTrue(s.maxRows() >= 2, s.toString());
    assertEquals(0, s.errors(), s.toString());
    awaitZero(server);
  }

  /** A hand-driven stream, to send what a RemoteDrafter never would. */
  final class Raw implements MessageStream.Listener<DraftMessage> {
    final LinkedBlockingQueue<DraftMessage> replies = new LinkedBlockingQueue<>();
    final MessageStream<DraftMessage> stream;
    final ExecutorService pool = Executors.newSingleThreadExecutor();

    Raw(NettyHost from, DraftServer to) throws Exception {
      from.peerStore().addAddrs(to.host().peerId(), to.host().listenAddrs());
      final Object[] box = new Object[1];
      from.newStream(to.host().peerId(), List.of(DraftProtocol.ID), st -> box[0] = MessageStream.attach(st,
          DraftProtocol.CODEC, pool, this)).get(10, TimeUnit.SECONDS);
      @SuppressWarnings("unchecked")
      MessageStream<DraftMessage> s = (MessageStream<DraftMessage>) box[0];
      stream = s;
      keep(pool::shutdownNow);
    }

    DraftMessage ask(DraftMessage m) throws InterruptedException {
      stream.send(m);
      DraftMessage r = replies.poll(10, TimeUnit.SECONDS);
      assertNotNull(r, "no answer to " + m.getBodyCase());
      return r;
    }

    Error.Code refused(DraftMessage m) throws InterruptedException {
      DraftMessage r = ask(m);
      assertTrue(r.hasError(), "expected an error, got " + r);
      return r.getError().getCode();
    }

    @Override
    public void onMessage(MessageStream<DraftMessage> s, DraftMessage m) {
      replies.add(m);
    }

    @Override
    public void onClosed(MessageStream<DraftMessage> s, Throwable cause) {
    }
  }

  static DraftMessage open(String id, String model, int maxTokens, int... prompt) {
    Open.Builder o = Open.newBuilder().setSessionId(id).setModelId(model).setTopP(1).setMaxTokens(maxTokens);
    for (int t : prompt) {
      o.addPrompt(t);
    }
    return DraftMessage.newBuilder().setOpen(o).build();
  }

  static DraftMessage propose(String id, long seq, int k, Accepted... updates) {
    return DraftMessage.newBuilder().setPropose(Propose.newBuilder().setSessionId(id).setSeq(seq).setK(k)
        .addAllAccepted(List.of(updates))).build();
  }

  static Accepted verdict(int contextBefore, int drafted, int kept, int next) {
    return Accepted.newBuilder().setContextBefore(contextBefore).setDrafted(drafted).setKept(kept).setNext(next).build();
  }

  @Test
  void badRequestsGetErrorsAndEveryoneElseGoesOn() throws Exception {
    DraftServer server = server(targetDir, DraftServer.Options.defaults().withSessions(8, 2));
    String model = server.modelId();
    int vocab = target.config().vocabSize();
    Raw raw = new Raw(host(), server);
    assertEquals(Error.Code.UNKNOWN_SESSION, raw.refused(propose("nobody", 1, 2)));
    assertEquals(Error.Code.WRONG_MODEL, raw.refused(open("a", "some-other-model", 16, 1, 2, 3)));
    assertEquals(Error.Code.BAD_REQUEST, raw.refused(open("a", model, 16, 1, vocab, 3)));
    assertEquals(Error.Code.BAD_REQUEST, raw.refused(open("a", model, 16)));
    assertEquals(Error.Code.BAD_REQUEST, raw.refused(open("a", model, 2, 1, 2, 3)));
    assertEquals(Error.Code.BAD_REQUEST, raw.refused(open("", model, 16, 1)));
    assertEquals(Error.Code.BAD_REQUEST, raw.refused(open("a", model, 100_000, 1)));
    // a session with room for 8 positions: prompt 3 leaves k <= 6
    assertTrue(raw.ask(open("a", model, 8, 1, 2, 3)).hasOpened());
    assertEquals(Error.Code.BAD_REQUEST, raw.refused(open("a", model, 8, 1, 2, 3)));
    assertEquals(Error.Code.BAD_REQUEST, raw.refused(propose("a", 1, 0)));
    assertEquals(Error.Code.BAD_REQUEST, raw.refused(propose("a", 2, 33)));
    assertEquals(Error.Code.LIMIT, raw.refused(propose("a", 3, 7)));
    DraftMessage ok = raw.ask(propose("a", 4, 2));
    assertTrue(ok.hasDrafts(), ok.toString());
    Drafts d = ok.getDrafts();
    assertEquals(2, d.getTokensCount());
    assertEquals(4, d.getSeq());
    assertEquals(Error.Code.BAD_REQUEST, raw.refused(propose("a", 4, 2, verdict(3, 2, 1, 5))), "seq must grow");
    assertEquals(Error.Code.BAD_REQUEST, raw.refused(propose("a", 5, 2, verdict(4, 2, 1, 5))), "wrong context");
    assertEquals(Error.Code.BAD_REQUEST, raw.refused(propose("a", 6, 2, verdict(3, 3, 1, 5))), "wrong draft count");
    assertEquals(Error.Code.BAD_REQUEST, raw.refused(propose("a", 7, 2, verdict(3, 2, 3, 5))), "kept > drafted");
    assertEquals(Error.Code.BAD_REQUEST, raw.refused(propose("a", 8, 2, verdict(3, 2, 1, vocab))), "next outside vocab");
    // none of that changed the session: the real verdict still applies
    DraftMessage after = raw.ask(propose("a", 9, 2, verdict(3, 2, 1, 5)));
    assertTrue(after.hasDrafts(), after.toString());
    assertTrue(raw.ask(open("b", model, 16, 4)).hasOpened());
    assertEquals(Error.Code.LIMIT, raw.refused(open("c", model, 16, 4)), "two sessions per peer");
    assertEquals(Error.Code.UNKNOWN_SESSION, raw.refused(DraftMessage.newBuilder().setClose(Close.newBuilder()
        .setSessionId("zzz")).build()));
    assertEquals(Error.Code.BAD_REQUEST, raw.refused(DraftMessage.newBuilder().setDrafts(Drafts.newBuilder()).build()));

    // another entry is served throughout, and sees refusals as DraftExceptions it did not lose the node over
    DraftClient client = client(Duration.ofSeconds(20));
    GenerationResult r = generate(request(PROMPTS[0], 20, 0, 1, 0, 3), remote(client, server));
    assertArrayEquals(targetAlone(PROMPTS[0], 20), r.tokenIds());
    DraftException wrong = assertThrows(DraftException.class, () -> generate(request(PROMPTS[0], 20, 0, 1, 0, 3),
        client.factory(server.host().peerId(), server.host().listenAddrs(), "not-the-model")));
    assertEquals("WRONG_MODEL", wrong.code());
    assertFalse(wrong.draftNodeLost());
    assertTrue(server.stats().errors() >= 18, server.stats().toString());
    // the client's session closes asynchronously after its generation; the raw stream's two stay
    Await.awaitTrue(() -> server.sessionCount() == 2,
        () -> "the raw stream's two sessions are still open, no other: " + server.sessionCount());
  }

  @Test
  void aKilledDraftNodeFailsProposeFast() {
    DraftServer server = server(randomDraftDir, DraftServer.Options.defaults());
    DraftClient client = client(Duration.ofSeconds(20));
    GenerationRequest req = request(PROMPTS[1], 30, 0, 1, 0, 3);
    RemoteDrafter d = keep(client.drafter(server.host().peerId(), server.host().listenAddrs(), server.modelId(), req,
        64, target.tokenizer().vocabSize()));
    int[] prompt = PromptCheck.encode(target.tokenizer(), req, target.config());
    d.start(prompt);
    int[] drafts = d.propose(3);
    d.accepted(prompt.length, drafts, 1, 7);
    server.host().close();
    long t0 = System.nanoTime();
    DraftException e = assertThrows(DraftException.class, () -> d.propose(3));
    long ms = (System.nanoTime() - t0) / 1_000_000;
    assertTrue(ms < 3_000, "failed in " + ms + " ms, not by the 20 s timeout: " + e.getMessage());
    assertTrue(e.draftNodeLost(), e.code() + ": " + e.getMessage());
    assertTrue(e.getMessage().contains(server.host().peerId().toString()), e.getMessage());
    assertInstanceOf(DraftException.class, assertThrows(DraftException.class, () -> d.propose(3)), "stays failed");

    // a new generation cannot reach it at all: it goes on without speculation, same output
    GenerationResult without = generate(req, remote(client, server));
    assertEquals(0, without.draftedTokens());
    assertArrayEquals(targetAlone(PROMPTS[1], 30), without.tokenIds());
    GenerationResult plain = generate(request(PROMPTS[1], 30, 0, 1, 0, 0), remote(client, server));
    assertArrayEquals(targetAlone(PROMPTS[1], 30), plain.tokenIds());
  }

  @Test
  void aDraftNodeShuttingDownTellsItsEntries() {
    DraftServer server = server(randomDraftDir, DraftServer.Options.defaults());
    DraftClient client = client(Duration.ofSeconds(20));
    GenerationRequest req = request(PROMPTS[2], 30, 0, 1, 0, 2);
    RemoteDrafter d = keep(client.drafter(server.host().peerId(), server.host().listenAddrs(), server.modelId(), req,
        64, target.tokenizer().vocabSize()));
    d.start(PromptCheck.encode(target.tokenizer(), req, target.config()));
    server.close();
    DraftException e = assertThrows(DraftException.class, () -> d.propose(2));
    assertTrue(e.draftNodeLost(), e.code() + ": " + e.getMessage());
  }

  @Test
  void aSilentDraftNodeTimesOut() {
    NettyHost silent = host();
    ExecutorService pool = Executors.newSingleThreadExecutor();
    keep(pool::shutdownNow);
    silent.setStreamHandler(DraftProtocol.ID, st -> MessageStream.attach(st, DraftProtocol.CODEC, pool,
        new MessageStream.Listener<DraftMessage>() {
          @Override
          public void onMessage(MessageStream<DraftMessage> s, DraftMessage m) {
          }

          @Override
          public void onClosed(MessageStream<DraftMessage> s, Throwable cause) {
          }
        }));
    DraftClient client = client(Duration.ofMillis(300));
    RemoteDrafter d = keep(client.drafter(silent.peerId(), silent.listenAddrs(), "m", GenerationRequest.greedy("x", 4),
        16, 0));
    long t0 = System.nanoTime();
    DraftException e = assertThrows(DraftException.class, () -> d.start(new int[] {1, 2}));
    assertEquals(DraftException.TIMEOUT, e.code());
    assertTrue(e.draftNodeLost());
    assertTrue(System.nanoTime() - t0 < 5_000_000_000L);
  }

  static void awaitZero(DraftServer server) {
    long deadline = System.nanoTime() + 5_000_000_000L;
    while (server.sessionCount() != 0 && System.nanoTime() < deadline) {
      Thread.onSpinWait();
    }
    assertEquals(0, server.sessionCount(), "every session freed once its entry closed it");
  }
}
