package dev.dsd.node.generate.tree;

import dev.dsd.node.generate.GenerationRequest;
import dev.dsd.node.generate.GenerationResult;
import dev.dsd.node.generate.SpeculativeLoop;
import dev.dsd.node.generate.TokenOutput;
import dev.dsd.node.generate.TargetPass;
import dev.dsd.node.generate.TokenSink;
import dev.dsd.pipeline.runtime.TreeShape;
import dev.dsd.pipeline.tokenizer.Tokenizer;
import dev.dsd.verification.acceptance.TargetScores;
import dev.dsd.verification.tree.DraftTree;
import dev.dsd.verification.tree.TreeBudget;
import dev.dsd.verification.tree.TreeRule;
import java.util.Arrays;
import java.util.Set;

/**
 * One generation by token-tree speculation. Each round the drafter grows a tree under the budget,
 * the target scores {@code [pending tokens, tree nodes]} in one pass (the tree under its attention
 * mask), and the rule picks the accepted path and the token after it. As with chains, rejected
 * positions cost no extra call: the next round's {@code keep} keeps the accepted context through
 * the root and its {@code keepRows} name the accepted path's cache rows, which every stage moves
 * down to follow it before running the next tree.
 */
public final class TreeLoop {
  private static final org.slf4j.Logger log = org.slf4j.LoggerFactory.getLogger(TreeLoop.class);
  /** The longest path of drafts a round may carry. */
  public static final int MAX_TREE_DEPTH = 32;
  private final TokenOutput output;

  public TreeLoop(Tokenizer tokenizer, Set<Integer> eos) {
    this.output = new TokenOutput(tokenizer, eos);
  }

  /**
   * @param maxNodes candidates the drafter may grow per round (the budget picks among them)
   * @param capacity positions the target's caches hold (prompt + max_tokens + the largest tree)
   * @param t0 when the generation began (setup included in the result's times)
   */
  public GenerationResult run(GenerationRequest req, int[] prompt, TargetPass target, TreeDrafter drafter,
      TreeRule rule, TreeBudget budget, int maxNodes, int capacity, TokenSink sink,
      SpeculativeLoop.RoundListener listener, long t0) {
    if (req.logprobs() != GenerationRequest.NO_LOGPROBS) { // a tree's score rows are its nodes, not output positions
      throw new IllegalArgumentException("a tree generation reports no logprobs");
    }
    TokenOutput.Run out = output.start(req, sink, t0);
    int rounds = 0;
    long drafted = 0;
    long acceptedTotal = 0;
    if (drafter != null) {
      try {
        drafter.start(prompt);
      } catch (RuntimeException e) {
        drafter = dev.dsd.node.generate.DraftSource.dropLost(drafter, e);
      }
    }
    java.util.SplittableRandom seeds = new java.util.SplittableRandom(req.seed() ^ 0x7EE5EEDL);
    int[] pending = prompt; // positions the target has not seen, the last accepted token (the root) at the end
    int keep = 0;
    int[] keepRows = new int[0];
    while (!out.done()) {
      int cached = keep + keepRows.length;
      int context = cached + pending.length;
      int depthRoom = Math.min(req.maxTokens() - out.count() - 1, MAX_TREE_DEPTH);
      int nodeRoom = Math.min(maxNodes, capacity - context);
      long t1 = System.nanoTime();
      DraftTree tree = DraftTree.empty();
      double[] scores0 = new double[0];
      if (drafter != null && depthRoom > 0 && nodeRoom > 0) {
        try {
          tree = drafter.propose(nodeRoom, depthRoom, budget);
          scores0 = drafter.lastScores();
        } catch (RuntimeException e) {
          drafter = dev.dsd.node.generate.DraftSource.dropLost(drafter, e);
        }
      }
      long t2 = System.nanoTime();
      int root = pending.length - 1;
      int[] input = Arrays.copyOf(pending, pending.length + tree.size());
      int[] parents = TreeShape.chain(input.length);
      for (int i = 0; i < tree.size(); i++) {
        input[pending.length + i] = tree.tokens()[i];
        int p = tree.parents()[i];
        parents[pending.length + i] = p == TreeShape.ROOT ? root : pending.length + p;
      }
      // a lossless sampling session verifies candidates by following the last stage's draws (a few
      // bytes per node); an adaptive one reads each node's probabilities, so it takes the rows
      boolean follow = req.temperature() > 0 && rule.lossless() && candidatesOnly(tree);
      TargetScores scores = target.runTree(keep, keepRows, input, parents, tree.size() + 1, follow, seeds.nextLong());
      TreeRule.Verdict v = (follow ? FOLLOW : rule).decide(tree, scores);
      long t3 = System.nanoTime();
      budget.observe(scores0, v.path(), input.length, t3 - t2, target.lastComputeNanos(), t2 - t1);
      double predicted = java.util.Arrays.stream(scores0).sum();
      listener.round(tree.size(), v.accepted(), t2 - t1, t3 - t2);
      log.debug("tree round={} nodes={} depth={} accepted={} predicted={} draftUs={} verifyUs={}", rounds + 1,
          tree.size(), tree.depth(), v.accepted(), String.format("%.2f", predicted), (t2 - t1) / 1000,
          (t3 - t2) / 1000);
      rounds++;
      drafted += tree.size();
      acceptedTotal += v.accepted();
      if (drafter != null) {
        try {
          drafter.accepted(tree, v.path(), v.next());
        } catch (RuntimeException e) {
          drafter = dev.dsd.node.generate.DraftSource.dropLost(drafter, e);
        }
      }
      // the cache now holds [0, cached) + input; the root sits at cached + root
      keep = cached + pending.length;
      keepRows = new int[v.accepted()];
      for (int j = 0; j < keepRows.length; j++) {
        keepRows[j] = keep + v.path()[j];
      }
      pending = new int[] {v.next()};
      int[] produced = Arrays.copyOf(tree.pathTokens(v.path()), v.accepted() + 1);
      produced[v.accepted()] = v.next();
      for (int tok : produced) {
        if (!out.emit(tok, scores, 0, req)) {
          break;
        }
      }
    }
    return out.finish(prompt, rounds, drafted, acceptedTotal, target);
  }

  private static final TreeRule FOLLOW = new dev.dsd.verification.tree.FollowSamples();

  private static boolean candidatesOnly(DraftTree tree) {
    for (double[] q : tree.childDistributions()) {
      if (q != null) {
        return false;
      }
    }
    return true;
  }
}
