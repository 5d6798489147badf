package dev.dsd.node.pipeline;

import dev.dsd.node.entry.PipelineGenerator;
import dev.dsd.node.entry.PipelineTargetPass;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.node.generate.DraftModel;
import dev.dsd.node.generate.GenerationRequest;
import dev.dsd.node.generate.GenerationResult;
import dev.dsd.node.generate.TokenSink;
import dev.dsd.node.routing.Route;
import dev.dsd.p2p.crypto.Identity;
import dev.dsd.p2p.host.HostConfig;
import dev.dsd.p2p.host.NettyHost;
import dev.dsd.pipeline.checkpoint.Checkpoint;
import dev.dsd.pipeline.runtime.RunnerOptions;
import dev.dsd.pipeline.runtime.ShardRunner;
import dev.dsd.pipeline.runtime.ShardSession;
import dev.dsd.pipeline.testing.TinyCheckpoint;
import dev.dsd.verification.acceptance.LogitScores;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import dev.dsd.node.testing.Closer;
import dev.dsd.node.testing.StageSwarm;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * Speculative sampling through a pipeline (sparse score summaries, a different draft, rejections)
 * must sample the first token exactly as the target alone would. Chi-square goodness of fit at
 * significance 0.001: a correct implementation fails about once in a thousand runs.
 */
class PipelineSamplingTest {
  static final double TEMPERATURE = 0.6;
  static final double TOP_P = 0.9;
  static final int SAMPLES = 2000;
  @TempDir Path tmp;
  @RegisterExtension final Closer closer = new Closer();


  <T extends AutoCloseable> T keep(T c) {
    return closer.keep(c);
  }

  @Test
  void firstTokenDistributionIsTheTargets() throws Exception {
    Path model = TinyCheckpoint.builder().layers(2).hidden(32).heads(4).kvHeads(2).maxPositions(64).seed(8)
        .writeTo(tmp.resolve("target"));
    Path draftDir = TinyCheckpoint.builder().layers(1).hidden(16).heads(2).kvHeads(1).maxPositions(64).seed(9)
        .writeTo(tmp.resolve("draft"));
    Checkpoint ck = keep(Checkpoint.open(model));
    StageSwarm swarm = StageSwarm.start(closer, model, new int[] {0, 1, 2}, RunnerOptions.defaults().withThreads(1));
    DraftModel draft = keep(DraftModel.load(draftDir, ck.config().vocabSize(), ck.tokenizer().vocabSize(), 1));
    PipelineGenerator gen = new PipelineGenerator(swarm.entry(), ck.tokenizer(), ck.config(),
        PipelineGenerator.RouteSource.of(swarm.route()), draft::newDrafter,
        PipelineTargetPass.Options.greedy());
    String prompt = "ab";
    int[] ids = ck.tokenizer().encode(prompt);
    int vocab = ck.config().vocabSize();
    double[] p;
    try (ShardRunner whole = new ShardRunner(ck.config(), ck.weights(), 0, 2, RunnerOptions.defaults().withThreads(1));
        ShardSession s = whole.openSession("ref", "test", 16)) {
      float[] logits = whole.forwardTokens(s, ids);
      float[] last = Arrays.copyOfRange(logits, (ids.length - 1) * vocab, ids.length * vocab);
      int usable = Math.min(vocab, ck.tokenizer().vocabSize());
      Arrays.fill(last, usable, vocab, Float.NEGATIVE_INFINITY);
      p = new LogitScores(last, vocab, TEMPERATURE, TOP_P).distribution(0);
    }
    long[] counts = new long[vocab];
    long drafted = 0;
    long accepted = 0;
    for (int i = 0; i < SAMPLES; i++) {
      GenerationRequest req = new GenerationRequest(prompt, 4, TEMPERATURE, TOP_P, 1000 + i, 3, false, List.of());
      GenerationResult r = gen.generate(req, TokenSink.NONE);
      counts[r.tokenIds()[0]]++;
      drafted += r.draftedTokens();
      accepted += r.acceptedTokens();
    }
    assertTrue(accepted > 0 && accepted < drafted, "both acceptance and rejection happened: " + accepted + "/" + drafted);
    // pool tokens with small expected counts into one bin so the chi-square approximation holds
    double chi = 0;
    int bins = 0;
    double pooledExpected = 0;
    long pooledObserved = 0;
    for (int t = 0; t < vocab; t++) {
      double e = p[t] * SAMPLES;
      if (e == 0) {
        assertTrue(counts[t] == 0, "token " + t + " is outside the target's top-p but was sampled " + counts[t] + " times");
      } else if (e < 5) {
        pooledExpected += e;
        pooledObserved += counts[t];
      } else {
        chi += (counts[t] - e) * (counts[t] - e) / e;
        bins++;
      }
    }
    if (pooledExpected > 0) {
      chi += (pooledObserved - pooledExpected) * (pooledObserved - pooledExpected) / pooledExpected;
      bins++;
    }
    int df = bins - 1;
    // Wilson–Hilferty: the chi-square quantile at 1 - 0.001 (z = 3.0902)
    double h = 2.0 / (9 * df);
    double critical = df * Math.pow(1 - h + 3.0902 * Math.sqrt(h), 3);
    assertTrue(df >= 2, "the target distribution must have several likely tokens, got " + bins + " bins");
    assertTrue(chi < critical, String.format("chi-square %.1f >= %.1f (df %d, alpha 0.001)", chi, critical, df));
  }
}
