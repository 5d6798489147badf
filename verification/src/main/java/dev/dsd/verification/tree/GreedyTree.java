package dev.dsd.verification.tree;

import dev.dsd.pipeline.runtime.TreeShape;
import dev.dsd.verification.acceptance.Relaxation;
import dev.dsd.verification.acceptance.TargetScores;
import java.util.Arrays;

/**
 * Follows the target's argmax down the tree: the accepted path is the longest one whose every
 * token is the target's greedy choice after the one before, so the output is exactly the target's
 * greedy output, as with a chain.
 *
 * <p>With a {@link Relaxation} (adaptive verification, lossy) a node none of whose children is the
 * argmax goes down to its first child, in index order, that the relaxation keeps at that row.
 */
public final class GreedyTree implements TreeRule {
  private final Relaxation relaxation;

  public GreedyTree() {
    this(Relaxation.NEVER);
  }

  public GreedyTree(Relaxation relaxation) {
    this.relaxation = relaxation;
  }

  @Override
  public Verdict decide(DraftTree tree, TargetScores target) {
    int[] path = new int[tree.size()];
    int n = 0;
    int node = TreeShape.ROOT;
    while (true) {
      int want = target.argmax(node + 1);
      int next = tree.child(node, want);
      if (next < 0 && relaxation != Relaxation.NEVER) {
        for (int c : tree.children(node)) {
          if (relaxation.keep(node + 1, tree.tokens()[c], target)) {
            next = c;
            break;
          }
        }
      }
      if (next < 0) {
        return new Verdict(Arrays.copyOf(path, n), want);
      }
      path[n++] = next;
      node = next;
    }
  }

  @Override
  public boolean lossless() {
    return relaxation == Relaxation.NEVER;
  }
}
