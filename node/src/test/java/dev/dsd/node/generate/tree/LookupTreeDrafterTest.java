package dev.dsd.node.generate.tree;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.node.generate.GenerationRequest;
import dev.dsd.node.generate.GenerationResult;
import dev.dsd.node.generate.LocalGenerator;
import dev.dsd.node.generate.SpeculativeLoop;
import dev.dsd.node.generate.TokenSink;
import dev.dsd.pipeline.checkpoint.Checkpoint;
import dev.dsd.pipeline.runtime.RunnerOptions;
import dev.dsd.pipeline.runtime.StageBatchRunner;
import dev.dsd.pipeline.runtime.TreeShape;
import dev.dsd.verification.tree.DraftTree;
import dev.dsd.verification.tree.TreeBudget;
import dev.dsd.verification.tree.TreeRule;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Prompt-lookup token trees: the trie of earlier continuations, and exact greedy output with the shipped target. */
class LookupTreeDrafterTest {
  // "1 2" ended at positions 1, 4 and 8 before the end: continuations 3 5 .., 4 1 .., 3 1 ..
  static final int[] CONTEXT = {1, 2, 3, 1, 2, 4, 1, 2, 3, 5, 9, 1, 2};
  static final int R = TreeShape.ROOT;

  @Test
  void branchesAreTheContinuationsOfEarlierOccurrencesMergedIntoATrie() {
    try (LookupTreeDrafter d = new LookupTreeDrafter()) {
      d.start(CONTEXT);
      DraftTree all = d.propose(16, 2, TreeBudget.fixed(16));
      assertArrayEquals(new int[] {3, 5, 4, 1, 1}, all.tokens(), all.toString());
      assertArrayEquals(new int[] {R, 0, R, 2, 0}, all.parents(), all.toString());
      assertArrayEquals(new double[] {2 / 3.0, 1 / 3.0, 1 / 3.0, 1 / 3.0, 1 / 3.0}, d.lastScores(), 1e-12);
      DraftTree two = d.propose(16, 2, TreeBudget.fixed(2)); // what most occurrences agree on comes first
      assertArrayEquals(new int[] {3, 5}, two.tokens());
      assertArrayEquals(new int[] {R, 0}, two.parents());
      DraftTree capped = d.propose(3, 2, TreeBudget.fixed(16)); // node room keeps the most recent occurrences
      assertEquals(3, capped.size());
      assertArrayEquals(new int[] {3, 5, 4}, capped.tokens());
      // the target kept 3 and chose 5: the context is now ... 1 2 3 5, and "3 5" recurs once, followed by 9 1 2
      d.accepted(two, new int[] {0}, 5);
      DraftTree after = d.propose(16, 4, TreeBudget.fixed(16));
      assertArrayEquals(new int[] {9, 1, 2, 3}, after.tokens(), after.toString());
    }
  }

  @Test
  void aContextThatNeverRepeatsGivesAnEmptyTree() {
    try (LookupTreeDrafter d = new LookupTreeDrafter()) {
      d.start(new int[] {1, 2, 3, 4, 5});
      assertEquals(0, d.propose(16, 8, TreeBudget.fixed(16)).size());
      assertEquals(0, d.propose(0, 8, TreeBudget.fixed(16)).size());
    }
  }

  @Test
  void lookupTreesReproduceTheTargetsGreedyOutputAndAcceptOnRepetitiveText() throws Exception {
    Path models = Path.of(System.getProperty("dsd.models", "../models"));
    Path target = models.resolve("pycoder-target");
    List<String> prompts = TreeLoopTest.prompts().subList(0, 4);
    String repetitive = "    x.append(1)\n    x.append(2)\n    x.append(3)\n    y.append(1)\n    y.append(2)\n    y.append(";
    try (Checkpoint ck = Checkpoint.open(target);
        LocalGenerator local = new LocalGenerator(target, 1);
        StageBatchRunner whole = new StageBatchRunner(ck.config(), ck.weights(), 0, ck.config().numLayers(),
            RunnerOptions.defaults().withThreads(1))) {
      int usable = Math.min(ck.config().vocabSize(), ck.tokenizer().vocabSize());
      TreeLoop loop = new TreeLoop(ck.tokenizer(), new HashSet<>(ck.config().eosTokenIds()));
      long tokens = 0;
      long rounds = 0;
      for (String text : concat(prompts, repetitive)) {
        GenerationResult want = local.generate(GenerationRequest.greedy(text, 32), TokenSink.NONE);
        GenerationRequest req = new GenerationRequest(text, 32, 0, 1, 0, 4, false, List.of());
        int[] prompt = ck.tokenizer().encode(text);
        int capacity = prompt.length + 32 + 16;
        try (LocalTreeTargetPass pass = new LocalTreeTargetPass(whole, whole.openSession("l" + rounds, "test", capacity),
                0, 1, usable);
            LookupTreeDrafter drafter = new LookupTreeDrafter()) {
          GenerationResult got = loop.run(req, prompt, pass, drafter, TreeRule.of(0, 0), TreeBudget.fixed(16), 16,
              capacity, TokenSink.NONE, SpeculativeLoop.RoundListener.NONE, System.nanoTime());
          assertArrayEquals(want.tokenIds(), got.tokenIds(), text);
          tokens += got.tokenIds().length;
          rounds += got.rounds();
        }
      }
      System.out.printf("prompt-lookup trees, shipped target: %.2f tokens/round%n", (double) tokens / rounds);
      assertTrue(tokens > 1.2 * rounds, "lookup trees accept drafts: " + tokens + " tokens in " + rounds + " rounds");
    }
  }

  static List<String> concat(List<String> a, String b) {
    List<String> out = new java.util.ArrayList<>(a);
    out.add(b);
    return out;
  }
}
