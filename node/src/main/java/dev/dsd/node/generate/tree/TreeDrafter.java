package dev.dsd.node.generate.tree;

import dev.dsd.verification.tree.DraftTree;
import dev.dsd.verification.tree.TreeBudget;

/**
 * Proposes a tree of draft tokens each round (see {@link DraftTree}). Like a chain drafter it is
 * started with the prompt and told after each round what the target kept, so its own state follows
 * the accepted context.
 */
public interface TreeDrafter extends dev.dsd.node.generate.DraftSource {

  /** Starts a generation from the prompt's token ids (never empty). */
  void start(int[] prompt);

  /**
   * A tree continuing the accepted context: candidates are grown up to {@code maxNodes} and
   * {@code maxDepth}, and {@code budget} picks how many of the best become nodes.
   */
  DraftTree propose(int maxNodes, int maxDepth, TreeBudget budget);

  /**
   * The path score of each node of the last tree (the draft's probability of the node's whole
   * path): their sum is the draft's own estimate of how many nodes stand.
   */
  double[] lastScores();

  /** The target accepted {@code path} (node indices of {@code tree}) and chose {@code next} after it. */
  void accepted(DraftTree tree, int[] path, int next);
}
