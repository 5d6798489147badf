package dev.dsd.verification.tree;

import dev.dsd.verification.acceptance.Relaxation;
import dev.dsd.verification.acceptance.TargetScores;

/**
 * Decides which root-to-node path of a draft tree the target accepts and the token after it (a
 * correction where the path stops early, a bonus where it reaches a leaf). The target's scores have
 * one row per tree position: row 0 at the root, row {@code i + 1} at node {@code i}.
 */
public interface TreeRule {
  /**
   * @param path accepted nodes, root's child first (empty: none)
   * @param next the token after the path, from the target's row at the path's end
   */
  record Verdict(int[] path, int next) {
    public int accepted() {
      return path.length;
    }
  }

  Verdict decide(DraftTree tree, TargetScores target);

  /** Whether the output is exactly the target's (false for adaptive verification). */
  default boolean lossless() {
    return true;
  }

  /** Greedy at temperature 0, multi-draft speculative sampling otherwise. */
  static TreeRule of(double temperature, long seed) {
    return of(temperature, seed, Relaxation.NEVER);
  }

  /** As {@link #of(double, long)}, keeping rejected nodes where {@code relaxation} says (adaptive verification). */
  static TreeRule of(double temperature, long seed, Relaxation relaxation) {
    return temperature == 0 ? new GreedyTree(relaxation) : new MultiDraftSampling(seed, relaxation);
  }
}
