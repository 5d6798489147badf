package dev.dsd.verification.tree;

import dev.dsd.pipeline.runtime.TreeShape;
import dev.dsd.verification.acceptance.TargetScores;
import java.util.Arrays;

/**
 * Multi-draft speculative sampling for trees of deterministic candidates, from one target draw per
 * node: at each node take the target's draw x there; if a child holds x, accept it and go on from
 * that child, else x is the next token. With one-hot q, {@link MultiDraftSampling}'s recursion
 * (accept child c with probability p(c), else remove c from p and try the next) is exactly "draw x
 * from p and see whether it is a child", so both give each output token the target's distribution;
 * this form needs only the draws, which the last stage makes (a few bytes per node instead of each
 * row's support). Draws at nodes off the accepted path are never looked at, and those on it are
 * independent, each from its own node's distribution.
 */
public final class FollowSamples implements TreeRule {
  @Override
  public Verdict decide(DraftTree tree, TargetScores target) {
    int[] path = new int[tree.size()];
    int n = 0;
    int node = TreeShape.ROOT;
    while (true) {
      if (tree.childDistribution(node) != null) {
        throw new IllegalArgumentException("node " + node + " has sampled children; FollowSamples takes candidates only");
      }
      int x = target.sampled(node + 1);
      int next = tree.child(node, x);
      if (next < 0) {
        return new Verdict(Arrays.copyOf(path, n), x);
      }
      path[n++] = next;
      node = next;
    }
  }
}
