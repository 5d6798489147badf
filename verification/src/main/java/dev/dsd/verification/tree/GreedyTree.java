package dev.dsd.verification.tree;

import dev.dsd.pipeline.runtime.TreeShape;
import dev.dsd.verification.acceptance.TargetScores;
import java.util.Arrays;

/**
 * Follows the target's argmax down the tree: the accepted path is the longest one whose every
 * token is the target's greedy choice after the one before, so the output is exactly the target's
 * greedy output, as with a chain.
 */
public final class GreedyTree implements TreeRule {
  @Override
  public Verdict decide(DraftTree tree, TargetScores target) {
    int[] path = new int[tree.size()];
    int n = 0;
    int node = TreeShape.ROOT;
    while (true) {
      int want = target.argmax(node + 1);
      int next = -1;
      for (int c : tree.children(node)) {
        if (tree.tokens()[c] == want) {
          next = c;
          break;
        }
      }
      if (next < 0) {
        return new Verdict(Arrays.copyOf(path, n), want);
      }
      path[n++] = next;
      node = next;
    }
  }
}
