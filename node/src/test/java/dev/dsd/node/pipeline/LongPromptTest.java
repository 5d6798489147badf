package dev.dsd.node.pipeline;

import dev.dsd.node.entry.PipelineGenerator;
import dev.dsd.node.entry.PipelineTargetPass;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.node.generate.GenerationException;
import dev.dsd.node.generate.GenerationRequest;
import dev.dsd.node.generate.LocalGenerator;
import dev.dsd.node.generate.PrefillChunks;
import dev.dsd.node.generate.TokenSink;
import dev.dsd.node.pipeline.proto.DType;
import dev.dsd.node.routing.Route;
import dev.dsd.node.testing.Await;
import dev.dsd.node.testing.Closer;
import dev.dsd.node.testing.StageSwarm;
import dev.dsd.pipeline.checkpoint.Checkpoint;
import dev.dsd.pipeline.runtime.RunnerOptions;
import dev.dsd.pipeline.runtime.ShardRunner;
import dev.dsd.pipeline.runtime.ShardSession;
import dev.dsd.pipeline.testing.TinyCheckpoint;
import dev.dsd.verification.acceptance.TargetScores;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * Prompts as long as the context: prefill goes in chunks and computes what one pass computes, KV
 * memory is charged for the positions a session fills, and every limit says what was asked and
 * what is left.
 */
class LongPromptTest {
  static final int CONTEXT = 512;
  @TempDir Path tmp;
  @RegisterExtension final Closer closer = new Closer();

  Path target() throws Exception {
    // vocabulary = the tokenizer's 277 ids: a padded one's masked logits are -inf, which full-logit
    // replies cannot carry
    return TinyCheckpoint.builder().layers(4).hidden(32).heads(4).kvHeads(2).maxPositions(CONTEXT).vocab(277).seed(21)
        .writeTo(tmp.resolve("target"));
  }

  /** Code-like text whose encoding has between {@code min} and {@code min + 8} tokens. */
  static String promptOf(Checkpoint ck, int min) {
    SplittableRandom rnd = new SplittableRandom(7);
    StringBuilder text = new StringBuilder();
    String[] words = {"def ", "x", " = ", "[1, 2]", "\n", "return ", "y", "(", ")", ":", "import os", " + "};
    while (ck.tokenizer().encode(text.toString()).length < min) {
      text.append(words[rnd.nextInt(words.length)]);
    }
    return text.toString();
  }

  @Test
  void chunkCutsKeepEveryPassWithinTheChunkAndTheScoredRowsTogether() {
    assertArrayEquals(new int[] {0, 256, 512, 768, 1024, 1280, 1536, 1792, 2048}, PrefillChunks.cuts(2048, 1, 256));
    assertArrayEquals(new int[] {0, 256, 300}, PrefillChunks.cuts(300, 5, 256));
    assertArrayEquals(new int[] {0, 5}, PrefillChunks.cuts(5, 5, 256));
    assertArrayEquals(new int[] {0, 2, 10}, PrefillChunks.cuts(10, 8, 4), "the scored rows stay in one pass");
    assertThrows(IllegalArgumentException.class, () -> PrefillChunks.cuts(4, 5, 256));
  }

  @Test
  void theLastChunksLogitsAreThoseOfOnePassOverTheWholePrompt() throws Exception {
    Path model = target();
    Checkpoint ck = closer.keep(Checkpoint.open(model));
    int[] prompt = ck.tokenizer().encode(promptOf(ck, CONTEXT - 1));
    prompt = Arrays.copyOf(prompt, CONTEXT - 1);
    try (ShardRunner r = new ShardRunner(ck.config(), ck.weights(), 0, ck.config().numLayers(),
        RunnerOptions.defaults().withThreads(1));
        ShardSession whole = r.openSession("whole", "t", CONTEXT);
        ShardSession chunked = r.openSession("chunked", "t", CONTEXT)) {
      int vocab = ck.config().vocabSize();
      float[] all = r.forwardTokens(whole, prompt);
      float[] want = Arrays.copyOfRange(all, all.length - vocab, all.length);
      int[] cuts = PrefillChunks.cuts(prompt.length, 1, 64);
      assertEquals(8, cuts.length - 1, "511 positions go as 7 passes of 64 and one of 63");
      float[] got = null;
      for (int i = 0; i + 1 < cuts.length; i++) {
        got = r.forwardTokens(chunked, Arrays.copyOfRange(prompt, cuts[i], cuts[i + 1]));
      }
      got = Arrays.copyOfRange(got, got.length - vocab, got.length);
      double worst = 0;
      for (int v = 0; v < vocab; v++) {
        worst = Math.max(worst, Math.abs(want[v] - got[v]));
      }
      assertTrue(worst < 1e-4, "largest logit difference " + worst);
      // and the caches agree: the next token scores the same after either prefill
      float[] a = r.forwardTokens(whole, new int[] {5});
      float[] b = r.forwardTokens(chunked, new int[] {5});
      for (int v = 0; v < vocab; v++) {
        assertEquals(a[v], b[v], 1e-4, "next-token logit " + v);
      }
    }
  }

  @Test
  void aPromptAsLongAsTheContextRunsInChunksThroughThePipelineWithTheSameOutput() throws Exception {
    Path model = target();
    StageSwarm s = StageSwarm.start(closer, model, new int[] {0, 2, 4}, RunnerOptions.defaults().withThreads(1));
    Checkpoint ck = closer.keep(Checkpoint.open(model));
    String text = promptOf(ck, CONTEXT - 16);
    int promptTokens = ck.tokenizer().encode(text).length;
    GenerationRequest req = GenerationRequest.greedy(text, CONTEXT - promptTokens);
    int[] want;
    try (LocalGenerator local = new LocalGenerator(model, 1)) { // in passes of the default 256
      want = local.generate(req, TokenSink.NONE).tokenIds();
    }
    assertTrue(want.length > 0);
    PipelineTargetPass.Options base = PipelineTargetPass.Options.greedy().withActivations(DType.F32);
    for (int chunk : new int[] {CONTEXT, 64}) { // one round, then eight
      long roundsBefore = s.stages().get(1).stats().rounds.sum();
      PipelineGenerator gen = new PipelineGenerator(s.entry(), ck.tokenizer(), ck.config(),
          PipelineGenerator.RouteSource.of(s.route()), PipelineGenerator.DrafterFactory.NONE,
          base.withPrefillChunk(chunk));
      var got = gen.generate(req, TokenSink.NONE);
      assertArrayEquals(want, got.tokenIds(), "prefill chunk " + chunk);
      long prefillRounds = (promptTokens + chunk - 1) / chunk;
      long expected = prefillRounds + got.rounds() - 1;
      // the stage counts a round just after sending its result: wait for the count, then check it is exact
      Await.awaitTrue(() -> s.stages().get(1).stats().rounds.sum() - roundsBefore >= expected,
          () -> "the last stage ran " + expected + " rounds");
      Thread.sleep(50);
      assertEquals(expected, s.stages().get(1).stats().rounds.sum() - roundsBefore,
          "the prompt went as " + prefillRounds + " rounds of at most " + chunk + " positions");
    }
    // the full distribution of the last position, sent whole: chunked equals one round
    PipelineTargetPass.Options full = base.withSampling(1, 1).withFullLogits(true);
    int[] ids = ck.tokenizer().encode(text);
    TargetScores one;
    TargetScores chunked;
    try (PipelineTargetPass p = PipelineTargetPass.open(s.entry(), s.route(), CONTEXT, full.withPrefillChunk(CONTEXT))) {
      one = p.run(0, ids, new int[0], 1);
    }
    try (PipelineTargetPass p = PipelineTargetPass.open(s.entry(), s.route(), CONTEXT, full.withPrefillChunk(32))) {
      chunked = p.run(0, ids, new int[0], 1);
    }
    assertEquals(one.argmax(0), chunked.argmax(0));
    for (int v = 0; v < one.vocab(); v++) {
      assertEquals(one.probability(0, v), chunked.probability(0, v), 1e-5, "p(" + v + ")");
    }
  }

  @Test
  void aPromptBeyondTheContextIsRefusedSayingHowLongItIs() throws Exception {
    Path model = target();
    Checkpoint ck = closer.keep(Checkpoint.open(model));
    StageSwarm s = StageSwarm.start(closer, model, new int[] {0, 4}, RunnerOptions.defaults().withThreads(1));
    PipelineGenerator gen = new PipelineGenerator(s.entry(), ck.tokenizer(), ck.config(),
        PipelineGenerator.RouteSource.of(s.route()), PipelineGenerator.DrafterFactory.NONE,
        PipelineTargetPass.Options.greedy());
    String text = promptOf(ck, CONTEXT + 4);
    int n = ck.tokenizer().encode(text).length;
    GenerationException e = assertThrows(GenerationException.class,
        () -> gen.generate(GenerationRequest.greedy(text, 4), TokenSink.NONE));
    assertEquals("the prompt is " + n + " tokens; the model's context holds " + CONTEXT, e.getMessage());
    try (PipelineTargetPass p = PipelineTargetPass.open(s.entry(), s.route(), 100, PipelineTargetPass.Options.greedy())) {
      IllegalArgumentException over = assertThrows(IllegalArgumentException.class,
          () -> p.run(0, new int[101], new int[0], 1));
      assertEquals("positions 0..101 exceed the session's 100", over.getMessage());
    }
  }

  @Test
  void stagesChargeKvMemoryForWhatSessionsUseAndSayWhatIsLeft() throws Exception {
    Path model = target();
    long perToken = 2L * 4 * 16 * Float.BYTES; // 4 layers x (K+V) x kvDim 16 x 4 bytes
    // room for 150 positions in all, 75 per upstream peer; every session asks for the whole context
    RunnerOptions small = new RunnerOptions(1, 8, 150 * perToken, RunnerOptions.DEFAULT_IDLE_TIMEOUT);
    StageSwarm s = StageSwarm.start(closer, model, new int[] {0, 4}, small);
    Route route = s.route();
    PipelineService entry2 = closer.keep(new PipelineService(closer.host(), List.of(), 2));
    PipelineService entry3 = closer.keep(new PipelineService(closer.host(), List.of(), 2));
    PipelineTargetPass.Options o = PipelineTargetPass.Options.greedy();
    PipelineTargetPass a = closer.keep(PipelineTargetPass.open(s.entry(), route, CONTEXT, o));
    PipelineTargetPass b = closer.keep(PipelineTargetPass.open(entry2, route, CONTEXT, o));
    PipelineTargetPass c = closer.keep(PipelineTargetPass.open(entry3, route, CONTEXT, o));
    a.run(0, new int[60], new int[0], 1);
    b.run(0, new int[60], new int[0], 1);
    PipelineException peer = assertThrows(PipelineException.class, () -> a.run(60, new int[20], new int[0], 1));
    assertEquals("LIMIT", peer.code());
    assertTrue(peer.getMessage().contains("holds " + 60 * perToken + " bytes of KV cache here, limit " + 75 * perToken
        + "; session " + a.sessionId() + " needs " + 20 * perToken + " more to grow to 80 positions"), peer.getMessage());
    PipelineException budget = assertThrows(PipelineException.class, () -> c.run(0, new int[40], new int[0], 1));
    assertEquals("LIMIT", budget.code());
    assertTrue(budget.getMessage().contains("KV memory budget exhausted: session " + c.sessionId() + " needs "
        + 40 * perToken + " more bytes to grow from 0 to 40 positions (" + perToken + " bytes each); " + 30 * perToken
        + " of " + 150 * perToken + " bytes are free"), budget.getMessage());
    b.close();
    PipelineTest.awaitZero(() -> s.stages().get(0).stageSessionCount() - 1, "b's session and c's refused one are freed");
    try (PipelineTargetPass again = PipelineTargetPass.open(entry3, route, CONTEXT, o)) {
      again.run(0, new int[70], new int[0], 1); // b's positions were given back
    }
  }
}
