package dev.dsd.verification.tree;

/**
 * How many draft nodes a tree round carries. A drafter grows candidates in order of their path
 * score (the draft's probability of the whole path, which is also its estimate that the target
 * accepts the node), so the best tree of n nodes is the first n candidates and the budget only has
 * to pick n from the sorted scores.
 */
public interface TreeBudget {
  /** How many of the candidates (path scores, descending) become nodes: 0..scores.length. */
  int choose(double[] sortedScores);

  /**
   * How the round went.
   *
   * @param scores the path score of each node sent (the tree's node order)
   * @param accepted the nodes the target accepted
   * @param positions positions the target ran (pending tokens + nodes)
   * @param roundNanos wall time of the target pass
   * @param computeNanos of it, time the stages computed (-1: all of it)
   * @param draftNanos time spent drafting
   */
  void observe(double[] scores, int[] accepted, int positions, long roundNanos, long computeNanos, long draftNanos);

  /** Always {@code n} nodes (fewer when there are fewer candidates). */
  static TreeBudget fixed(int n) {
    if (n < 0) {
      throw new IllegalArgumentException("a tree budget is at least 0 nodes, got " + n);
    }
    return new TreeBudget() {
      @Override
      public int choose(double[] sortedScores) {
        return Math.min(n, sortedScores.length);
      }

      @Override
      public void observe(double[] scores, int[] accepted, int positions, long roundNanos, long computeNanos,
          long draftNanos) { }
    };
  }
}
