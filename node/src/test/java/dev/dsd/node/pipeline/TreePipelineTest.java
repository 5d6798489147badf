package dev.dsd.node.pipeline;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.dsd.node.entry.PipelineGenerator;
import dev.dsd.node.entry.PipelineTargetPass;
import dev.dsd.node.generate.DraftModel;
import dev.dsd.node.generate.GenerationRequest;
import dev.dsd.node.generate.GenerationResult;
import dev.dsd.node.generate.LocalGenerator;
import dev.dsd.node.generate.TokenSink;
import dev.dsd.node.pipeline.proto.DType;
import dev.dsd.node.testing.Closer;
import dev.dsd.node.testing.StageSwarm;
import dev.dsd.pipeline.checkpoint.Checkpoint;
import dev.dsd.pipeline.runtime.RunnerOptions;
import dev.dsd.pipeline.runtime.ShardRunner;
import dev.dsd.pipeline.runtime.ShardSession;
import dev.dsd.verification.acceptance.TargetScores;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Token trees through the shipped target cut into 4 stages: greedy tree output is the target's
 * own greedy output, and a malformed tree round gets BAD_REQUEST while the session goes on with the
 * same cache (its next tree round scores exactly what the whole model does).
 */
class TreePipelineTest {
  @RegisterExtension final Closer closer = new Closer();

  static Path models() {
    return Path.of(System.getProperty("dsd.models", "../models"));
  }

  @Test
  void greedyTreesThroughFourStagesAreTheTargetAloneAndSampledAndAdaptiveTreesRun() throws Exception {
    Path target = models().resolve("pycoder-target");
    List<String> prompts = new ArrayList<>();
    new ObjectMapper().readTree(models().resolve("heldout-prompts.json").toFile()).get("prompts")
        .forEach(n -> prompts.add(n.asText()));
    Checkpoint ck = closer.keep(Checkpoint.open(target));
    StageSwarm swarm = StageSwarm.start(closer, target, StageSwarm.even(ck.config().numLayers(), 4),
        RunnerOptions.defaults().withThreads(1));
    DraftModel draft = closer.keep(DraftModel.load(models().resolve("pycoder-draft"), ck.config().vocabSize(),
        ck.tokenizer().vocabSize(), 1));
    LocalGenerator local = closer.keep(new LocalGenerator(target, models().resolve("pycoder-draft"), 1));
    PipelineGenerator gen = new PipelineGenerator(swarm.entry(), ck.tokenizer(), ck.config(),
        PipelineGenerator.RouteSource.of(swarm.route()), draft::newDrafter,
        PipelineTargetPass.Options.greedy().withActivations(DType.F32)).withTreeDrafters(draft::newTreeDrafter);
    long tokens = 0;
    long rounds = 0;
    for (int i = 0; i < 6; i++) {
      GenerationResult want = local.generate(GenerationRequest.greedy(prompts.get(i), 32), TokenSink.NONE);
      int tree = i % 2 == 0 ? GenerationRequest.AUTO : 10;
      GenerationResult got = gen.generate(new GenerationRequest(prompts.get(i), 32, 0, 1, 0, GenerationRequest.AUTO,
          false, List.of()).withTree(tree), TokenSink.NONE);
      assertArrayEquals(want.tokenIds(), got.tokenIds(), "prompt " + i + " tree " + tree);
      tokens += got.tokenIds().length;
      rounds += got.rounds();
    }
    assertTrue(tokens > 1.3 * rounds, tokens + " tokens in " + rounds + " tree rounds");
    GenerationResult sampled = gen.generate(new GenerationRequest(prompts.get(0), 40, 0.8, 0.95, 3,
        GenerationRequest.AUTO, false, List.of()).withTree(GenerationRequest.AUTO), TokenSink.NONE);
    assertTrue(sampled.tokenIds().length == 40 || sampled.finishReason().equals("stop"), sampled.toString());
    assertTrue(sampled.rounds() <= sampled.tokenIds().length + 1);
    adaptiveTreesRelaxTheSameNodesAsOneProcess(prompts, local, gen);
  }

  /**
   * Adaptive verification per tree node through 4 stages (the last stage sends each child's
   * probability next to the argmax) keeps exactly the nodes the whole model keeps, and it does keep
   * some the lossless rule rejects. A wide gap makes that happen on a few prompts.
   */
  private static void adaptiveTreesRelaxTheSameNodesAsOneProcess(List<String> prompts, LocalGenerator local,
      PipelineGenerator gen) {
    double gap = 0.2;
    gen.withAdaptiveMaxGap(gap);
    int changed = 0;
    for (int i = 0; i < 4; i++) {
      GenerationRequest req = new GenerationRequest(prompts.get(i), 32, 0, 1, 0, GenerationRequest.AUTO, true,
          List.of()).withTree(10);
      GenerationResult want = local.generate(req, TokenSink.NONE, dev.dsd.node.generate.SpeculativeLoop.RoundListener.NONE,
          local.rules().withAdaptiveMaxGap(gap));
      GenerationResult got = gen.generate(req, TokenSink.NONE);
      assertArrayEquals(want.tokenIds(), got.tokenIds(), "adaptive tree, prompt " + i);
      GenerationResult lossless = local.generate(GenerationRequest.greedy(prompts.get(i), 32), TokenSink.NONE);
      changed += java.util.Arrays.equals(lossless.tokenIds(), got.tokenIds()) ? 0 : 1;
    }
    assertTrue(changed > 0, "a gap of " + gap + " relaxed nothing on 4 prompts");
  }

  @Test
  void malformedTreeRoundsAreRefusedAndTheSessionGoesOn() throws Exception {
    Path target = models().resolve("pycoder-target");
    Checkpoint ck = closer.keep(Checkpoint.open(target));
    int vocab = ck.config().vocabSize();
    StageSwarm swarm = StageSwarm.start(closer, target, StageSwarm.even(ck.config().numLayers(), 2),
        RunnerOptions.defaults().withThreads(1));
    ShardRunner whole = closer.keep(new ShardRunner(ck.config(), ck.weights(), 0, ck.config().numLayers(),
        RunnerOptions.defaults()));
    int[] prompt = {5, 17, 42, 99, 3, 8};
    try (PipelineTargetPass p = PipelineTargetPass.open(swarm.entry(), swarm.route(), 64,
        PipelineTargetPass.Options.greedy().withActivations(DType.F32).withFullLogits(true))) {
      p.runTree(0, new int[0], prompt, new int[] {-1, 0, 1, 2, 3, 4}, 1);
      int[][] bad = {{-1, 1}, {-1, 2, 1}, {-1, 0, 5}};
      for (int[] parents : bad) {
        PipelineException e = assertThrows(PipelineException.class,
            () -> p.runTree(6, new int[0], new int[] {1, 2, 3}.length == parents.length ? new int[] {1, 2, 3}
                : new int[] {1, 2}, parents, parents.length));
        assertEquals("BAD_REQUEST", e.code(), e.getMessage());
      }
      PipelineException rows = assertThrows(PipelineException.class,
          () -> p.runTree(2, new int[] {4, 3}, new int[] {7}, new int[] {-1}, 1));
      assertEquals("BAD_REQUEST", rows.code(), rows.getMessage());
      // a tree on the untouched prompt: root 11 with children 250 and 7, 250 with child 64
      int[] tokens = {11, 250, 7, 64};
      int[] parents = {-1, 0, 0, 1};
      TargetScores s = p.runTree(6, new int[0], tokens, parents, 4);
      int[][] paths = {{11}, {11, 250}, {11, 7}, {11, 250, 64}};
      for (int node = 0; node < paths.length; node++) {
        int[] chain = java.util.Arrays.copyOf(prompt, prompt.length + paths[node].length);
        System.arraycopy(paths[node], 0, chain, prompt.length, paths[node].length);
        try (ShardSession ws = whole.openSession("w" + node, "t", 64)) {
          float[] logits = whole.forwardTokens(ws, chain);
          int best = dev.dsd.verification.sampling.Distributions.argmax(logits, (chain.length - 1) * vocab, vocab);
          assertEquals(best, s.argmax(node), "node " + node);
        }
      }
      // keep the path 11 -> 250 -> 64 (cache rows 6, 7, 9), then one more token continues it
      TargetScores after = p.runTree(7, new int[] {7, 9}, new int[] {33}, new int[] {-1}, 1);
      int[] chain = {5, 17, 42, 99, 3, 8, 11, 250, 64, 33};
      try (ShardSession ws = whole.openSession("after", "t", 64)) {
        float[] logits = whole.forwardTokens(ws, chain);
        assertEquals(dev.dsd.verification.sampling.Distributions.argmax(logits, (chain.length - 1) * vocab, vocab),
            after.argmax(0));
      }
    }
  }
}
