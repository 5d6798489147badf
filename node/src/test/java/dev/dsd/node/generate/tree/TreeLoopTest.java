package dev.dsd.node.generate.tree;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.dsd.node.generate.DraftModel;
import dev.dsd.node.generate.GenerationRequest;
import dev.dsd.node.generate.GenerationResult;
import dev.dsd.node.generate.LocalGenerator;
import dev.dsd.node.generate.SpeculativeLoop;
import dev.dsd.node.generate.TokenSink;
import dev.dsd.pipeline.checkpoint.Checkpoint;
import dev.dsd.pipeline.runtime.RunnerOptions;
import dev.dsd.pipeline.runtime.StageBatchRunner;
import dev.dsd.verification.tree.AutoTreeBudget;
import dev.dsd.verification.tree.TreeBudget;
import dev.dsd.verification.tree.TreeRule;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Tree speculation with the shipped pair in one process: on 20 held-out prompts, greedy output
 * through draft trees (fixed and auto budgets) is token-for-token the target's own greedy output,
 * with more than one token per round; sampled trees run to the end.
 */
class TreeLoopTest {
  static final int PROMPTS = 20;
  static final int NEW_TOKENS = 32;

  static Path models() {
    return Path.of(System.getProperty("dsd.models", "../models"));
  }

  static List<String> prompts() throws Exception {
    Path file = models().resolve("heldout-prompts.json");
    assertTrue(Files.isRegularFile(file), "held-out prompts missing under " + models().toAbsolutePath());
    List<String> out = new ArrayList<>();
    new ObjectMapper().readTree(file.toFile()).get("prompts").forEach(n -> out.add(n.asText()));
    return out;
  }

  @Test
  void greedyTreesReproduceTheTargetsGreedyOutput() throws Exception {
    Path target = models().resolve("pycoder-target");
    Path draftDir = models().resolve("pycoder-draft");
    List<String> prompts = prompts();
    assertTrue(prompts.size() >= PROMPTS, "need " + PROMPTS + " prompts, have " + prompts.size());
    try (Checkpoint ck = Checkpoint.open(target);
        LocalGenerator local = new LocalGenerator(target, 1);
        DraftModel draft = DraftModel.load(draftDir, ck.config().vocabSize(), ck.tokenizer().vocabSize(), 1);
        StageBatchRunner whole = new StageBatchRunner(ck.config(), ck.weights(), 0, ck.config().numLayers(),
            RunnerOptions.defaults().withThreads(1))) {
      int usable = Math.min(ck.config().vocabSize(), ck.tokenizer().vocabSize());
      TreeLoop loop = new TreeLoop(ck.tokenizer(), new HashSet<>(ck.config().eosTokenIds()));
      long tokens = 0;
      long rounds = 0;
      long accepted = 0;
      AutoTreeBudget auto = new AutoTreeBudget();
      for (int i = 0; i < PROMPTS; i++) {
        GenerationResult want = local.generate(GenerationRequest.greedy(prompts.get(i), NEW_TOKENS), TokenSink.NONE);
        GenerationRequest req = new GenerationRequest(prompts.get(i), NEW_TOKENS, 0, 1, 0, 4, false, List.of());
        int[] prompt = ck.tokenizer().encode(prompts.get(i));
        int maxNodes = i % 2 == 0 ? 12 : AutoTreeBudget.MAX_NODES;
        TreeBudget budget = i % 2 == 0 ? TreeBudget.fixed(12) : auto;
        int capacity = prompt.length + NEW_TOKENS + maxNodes;
        try (LocalTreeTargetPass pass = new LocalTreeTargetPass(whole, whole.openSession("t" + i, "test", capacity), 0, 1,
                usable);
            TreeDrafter drafter = draft.newTreeDrafter(req, capacity, usable)) {
          GenerationResult got = loop.run(req, prompt, pass, drafter, TreeRule.of(0, 0), budget, maxNodes, capacity,
              TokenSink.NONE, SpeculativeLoop.RoundListener.NONE, System.nanoTime());
          assertArrayEquals(want.tokenIds(), got.tokenIds(), "held-out prompt " + i + (i % 2 == 0 ? " (12 nodes)" : " (auto)"));
          tokens += got.tokenIds().length;
          rounds += got.rounds();
          accepted += got.acceptedTokens();
        }
      }
      System.out.printf("greedy trees, shipped pair: %.2f tokens/round, %d accepted nodes%n", (double) tokens / rounds,
          accepted);
      assertTrue(tokens > 1.3 * rounds, "trees accept drafts: " + tokens + " tokens in " + rounds + " rounds");
    }
  }

  /** `dsd generate --tree` locally: the per-session runner feeds the accepted path again under each tree. */
  @Test
  void localGenerationWithTreesIsTheTargetsGreedyOutput() throws Exception {
    Path target = models().resolve("pycoder-target");
    List<String> prompts = prompts();
    try (LocalGenerator gen = new LocalGenerator(target, models().resolve("pycoder-draft"), 1)) {
      long tokens = 0;
      long rounds = 0;
      for (int i = 0; i < 4; i++) {
        GenerationRequest chain = new GenerationRequest(prompts.get(i), NEW_TOKENS, 0, 1, 0, 0, false, List.of());
        GenerationResult want = gen.generate(chain, TokenSink.NONE);
        GenerationResult got = gen.generate(chain.withSpeculation(GenerationRequest.AUTO)
            .withTree(i % 2 == 0 ? GenerationRequest.AUTO : 12), TokenSink.NONE);
        assertArrayEquals(want.tokenIds(), got.tokenIds(), "prompt " + i);
        tokens += got.tokenIds().length;
        rounds += got.rounds();
      }
      assertTrue(tokens > 1.3 * rounds, tokens + " tokens in " + rounds + " rounds");
    }
  }

  @Test
  void sampledTreesRunToTheEnd() throws Exception {
    Path target = models().resolve("pycoder-target");
    try (Checkpoint ck = Checkpoint.open(target);
        DraftModel draft = DraftModel.load(models().resolve("pycoder-draft"), ck.config().vocabSize(),
            ck.tokenizer().vocabSize(), 1);
        StageBatchRunner whole = new StageBatchRunner(ck.config(), ck.weights(), 0, ck.config().numLayers(),
            RunnerOptions.defaults().withThreads(1))) {
      int usable = Math.min(ck.config().vocabSize(), ck.tokenizer().vocabSize());
      GenerationRequest req = new GenerationRequest(prompts().get(0), 48, 0.8, 0.95, 7, 4, false, List.of());
      int[] prompt = ck.tokenizer().encode(req.prompt());
      int capacity = prompt.length + 48 + 16;
      try (LocalTreeTargetPass pass = new LocalTreeTargetPass(whole, whole.openSession("s", "test", capacity), 0.8, 0.95,
              usable);
          TreeDrafter drafter = draft.newTreeDrafter(req, capacity, usable)) {
        GenerationResult got = new TreeLoop(ck.tokenizer(), new HashSet<>(ck.config().eosTokenIds())).run(req, prompt,
            pass, drafter, TreeRule.of(0.8, 7), TreeBudget.fixed(16), 16, capacity, TokenSink.NONE,
            SpeculativeLoop.RoundListener.NONE, System.nanoTime());
        assertTrue(got.tokenIds().length > 0 && got.rounds() <= got.tokenIds().length + 1, got.toString());
        for (int t : got.tokenIds()) {
          assertTrue(t >= 0 && t < usable, "token " + t);
        }
      }
    }
  }
}
