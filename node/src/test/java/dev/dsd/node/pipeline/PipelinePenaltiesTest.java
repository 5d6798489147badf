package dev.dsd.node.pipeline;

import dev.dsd.node.entry.PipelineGenerator;
import dev.dsd.node.entry.PipelineTargetPass;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.node.generate.DraftModel;
import dev.dsd.node.generate.GenerationRequest;
import dev.dsd.node.generate.GenerationResult;
import dev.dsd.node.generate.LocalGenerator;
import dev.dsd.node.generate.PenaltiesTest;
import dev.dsd.node.generate.TokenSink;
import dev.dsd.node.testing.Closer;
import dev.dsd.node.testing.StageSwarm;
import dev.dsd.pipeline.checkpoint.Checkpoint;
import dev.dsd.pipeline.runtime.RunnerOptions;
import dev.dsd.pipeline.runtime.ShardRunner;
import dev.dsd.pipeline.runtime.ShardSession;
import dev.dsd.pipeline.testing.TinyCheckpoint;
import dev.dsd.verification.acceptance.LogitScores;
import dev.dsd.verification.processing.Penalties;
import dev.dsd.verification.processing.PenaltyState;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * Penalties across a pipeline, where the last stage applies them with the history the rounds carry:
 * greedy output equals local greedy decoding with the same penalty, and speculative sampling samples
 * the penalized target (the joint law of the first two tokens, so that presence and frequency, which
 * count generated tokens only, are in play).
 */
class PipelinePenaltiesTest {
  @TempDir Path tmp;
  @RegisterExtension final Closer closer = new Closer();

  @Test
  void greedyWithEachPenaltyEqualsLocalGreedyDecoding() throws Exception {
    Path model = TinyCheckpoint.builder().layers(2).hidden(32).heads(4).kvHeads(2).maxPositions(128).seed(21)
        .writeTo(tmp.resolve("target"));
    Checkpoint ck = closer.keep(Checkpoint.open(model));
    StageSwarm swarm = StageSwarm.start(closer, model, new int[] {0, 1, 2}, RunnerOptions.defaults().withThreads(1));
    Path draftDir = TinyCheckpoint.builder().layers(1).hidden(16).heads(2).kvHeads(1).maxPositions(128).seed(5)
        .writeTo(tmp.resolve("draft"));
    DraftModel draft = closer.keep(DraftModel.load(draftDir, ck.config().vocabSize(), ck.tokenizer().vocabSize(), 1));
    PipelineGenerator gen = new PipelineGenerator(swarm.entry(), ck.tokenizer(), ck.config(),
        PipelineGenerator.RouteSource.of(swarm.route()), draft::newDrafter, PipelineTargetPass.Options.greedy());
    try (LocalGenerator local = new LocalGenerator(model, 1)) {
      for (Penalties p : PenaltiesTest.EACH) {
        long drafted = 0;
        long accepted = 0;
        for (String prompt : PenaltiesTest.PROMPTS) {
          GenerationRequest req = GenerationRequest.greedy(prompt, 16).withPenalties(p);
          int[] want = local.generate(req, TokenSink.NONE).tokenIds();
          GenerationResult got = gen.generate(req.withSpeculation(4), TokenSink.NONE);
          assertArrayEquals(want, got.tokenIds(), p + " prompt '" + prompt + "'");
          assertArrayEquals(want, gen.generate(req, TokenSink.NONE).tokenIds(), p + " without speculation");
          drafted += got.draftedTokens();
          accepted += got.acceptedTokens();
        }
        assertTrue(accepted > 0 && accepted < drafted, p + ": " + accepted + " of " + drafted + " accepted");
      }
      // logprobs need whole rows: the session asks the last stage for them
      GenerationRequest req = GenerationRequest.greedy("def f(x):", 8).withPenalties(new Penalties(1.5, 1, 0))
          .withLogprobs(2);
      GenerationResult a = gen.generate(req.withSpeculation(3), TokenSink.NONE);
      GenerationResult b = local.generate(req, TokenSink.NONE);
      for (int i = 0; i < 8; i++) {
        assertEquals(b.logprobs().get(i).logprob(), a.logprobs().get(i).logprob(), 2e-3);
        assertEquals(b.logprobs().get(i).top().get(1).token(), a.logprobs().get(i).top().get(1).token());
      }
    }
  }

  @Test
  void speculativeSamplingWithPenaltiesSamplesThePenalizedTarget() throws Exception {
    double temperature = 0.3; // a random tiny model is nearly uniform: sharpen it so that pairs get counts
    double topP = 0.9;
    int samples = 2500;
    Penalties p = new Penalties(1.6, 1.5, 1.0);
    Path model = TinyCheckpoint.builder().layers(2).hidden(32).heads(4).kvHeads(2).maxPositions(64).seed(8)
        .writeTo(tmp.resolve("target"));
    Path draftDir = TinyCheckpoint.builder().layers(1).hidden(16).heads(2).kvHeads(1).maxPositions(64).seed(9)
        .writeTo(tmp.resolve("draft"));
    Checkpoint ck = closer.keep(Checkpoint.open(model));
    StageSwarm swarm = StageSwarm.start(closer, model, new int[] {0, 1, 2}, RunnerOptions.defaults().withThreads(1));
    DraftModel draft = closer.keep(DraftModel.load(draftDir, ck.config().vocabSize(), ck.tokenizer().vocabSize(), 1));
    PipelineGenerator gen = new PipelineGenerator(swarm.entry(), ck.tokenizer(), ck.config(),
        PipelineGenerator.RouteSource.of(swarm.route()), draft::newDrafter, PipelineTargetPass.Options.greedy());
    String prompt = "ab";
    int[] ids = ck.tokenizer().encode(prompt);
    int vocab = ck.config().vocabSize();
    int usable = Math.min(vocab, ck.tokenizer().vocabSize());
    int eos = ck.config().eosTokenIds().get(0); // ends the generation: "the pair" is (eos, eos) or (t0, eos)
    // the exact law: p0 at the prompt, p1 given each first token t0, both penalized
    double[] p0;
    double[][] p1 = new double[vocab][];
    try (ShardRunner whole = new ShardRunner(ck.config(), ck.weights(), 0, 2, RunnerOptions.defaults().withThreads(1))) {
      p0 = penalized(whole, ids, new int[0], p, vocab, usable, temperature, topP);
      for (int t0 = 0; t0 < vocab; t0++) {
        if (p0[t0] > 0 && t0 != eos) {
          p1[t0] = penalized(whole, ids, new int[] {t0}, p, vocab, usable, temperature, topP);
        }
      }
    }
    long[][] counts = new long[vocab][vocab];
    long drafted = 0;
    long accepted = 0;
    for (int i = 0; i < samples; i++) {
      GenerationRequest req = new GenerationRequest(prompt, 2, temperature, topP, 5000 + i, 3, false, List.of(), p,
          GenerationRequest.NO_LOGPROBS);
      GenerationResult r = gen.generate(req, TokenSink.NONE);
      int[] t = r.tokenIds();
      counts[t.length > 0 ? t[0] : eos][t.length > 1 ? t[1] : eos]++;
      drafted += r.draftedTokens();
      accepted += r.acceptedTokens();
    }
    assertTrue(accepted > 0 && accepted < drafted, "both acceptance and rejection: " + accepted + "/" + drafted);
    double chi = 0;
    int bins = 0;
    double pooledExpected = 0;
    long pooledObserved = 0;
    for (int a = 0; a < vocab; a++) {
      for (int b = 0; b < vocab; b++) {
        double e = a == eos ? (b == eos ? p0[eos] * samples : 0) : p1[a] == null ? 0 : p0[a] * p1[a][b] * samples;
        if (e == 0) {
          assertEquals(0, counts[a][b], "pair " + a + "," + b + " has no mass under the penalized target");
        } else if (e < 5) {
          pooledExpected += e;
          pooledObserved += counts[a][b];
        } else {
          chi += (counts[a][b] - e) * (counts[a][b] - e) / e;
          bins++;
        }
      }
    }
    if (pooledExpected > 0) {
      chi += (pooledObserved - pooledExpected) * (pooledObserved - pooledExpected) / pooledExpected;
      bins++;
    }
    int df = bins - 1;
    double h = 2.0 / (9 * df); // Wilson–Hilferty quantile at 1 - 0.001
    double critical = df * Math.pow(1 - h + 3.0902 * Math.sqrt(h), 3);
    assertTrue(df >= 4, "the joint law must have several likely pairs, got " + bins + " bins");
    assertTrue(chi < critical, String.format("chi-square %.1f >= %.1f (df %d, alpha 0.001)", chi, critical, df));
  }

  /** The sampling distribution after {@code prompt + generated}, with the penalties over that history. */
  static double[] penalized(ShardRunner whole, int[] prompt, int[] generated, Penalties p, int vocab, int usable,
      double temperature, double topP) {
    int[] all = Arrays.copyOf(prompt, prompt.length + generated.length);
    System.arraycopy(generated, 0, all, prompt.length, generated.length);
    try (ShardSession s = whole.openSession("ref" + Arrays.toString(generated), "test", 16)) {
      float[] logits = whole.forwardTokens(s, all);
      float[] last = Arrays.copyOfRange(logits, (all.length - 1) * vocab, all.length * vocab);
      Arrays.fill(last, usable, vocab, Float.NEGATIVE_INFINITY);
      PenaltyState h = new PenaltyState(p, prompt.length, vocab, 16);
      h.process(0, all, last, 1, vocab);
      return new LogitScores(last, vocab, temperature, topP).distribution(0);
    }
  }
}
