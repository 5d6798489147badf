package dev.dsd.pipeline.runtime;

/**
 * The shape of the new positions of a call when they form a token tree instead of a chain: for
 * each new position the index of its parent among the call's new positions, or {@link #ROOT} when
 * it continues the cached prefix directly. A position attends to the cached prefix, its ancestors
 * and itself (the tree attention mask), and its rotary position is the cached length plus its depth,
 * so every root-to-leaf path computes exactly what the same tokens would as a chain.
 *
 * <p>Parents come before their children ({@code parent < own index}): a parent list that breaks it
 * (a cycle, a self-reference, a forward reference) is refused, so depth and ancestry are computed in
 * one pass with no search. A chain is {@code parents[i] = i - 1}.
 */
public final class TreeShape {
  /** The parent of a position that continues the cached prefix. */
  public static final int ROOT = -1;
  /**
   * Positions one tree call may have, the chain of pending tokens before the tree included (a
   * first round carries the prompt's last prefill pass, up to 256 positions by default, with the
   * tree on top): the mask costs positions x (cache + positions).
   */
  public static final int MAX_NODES = 1024;
  /** Depth a position may reach (its chain of ancestors in the call, that prefill pass included). */
  public static final int MAX_DEPTH = 1024;

  private TreeShape() {}

  /** Why {@code parents} is not a tree within the limits, or null when it is one. */
  public static String problem(int[] parents, int maxNodes, int maxDepth) {
    if (parents.length == 0) {
      return "a tree needs at least one position";
    }
    if (parents.length > maxNodes) {
      return "a tree of " + parents.length + " positions exceeds the limit of " + maxNodes;
    }
    int[] depth = new int[parents.length];
    for (int i = 0; i < parents.length; i++) {
      int p = parents[i];
      if (p < ROOT || p >= i) {
        return "position " + i + " has parent " + p + ": a parent must be ROOT (-1) or an earlier position";
      }
      depth[i] = p == ROOT ? 0 : depth[p] + 1;
      if (depth[i] >= maxDepth) {
        return "position " + i + " is at depth " + depth[i] + ", the limit is " + (maxDepth - 1);
      }
    }
    return null;
  }

  /** Depth of each position (roots 0); {@code parents} must pass {@link #problem}. */
  public static int[] depths(int[] parents) {
    int[] depth = new int[parents.length];
    for (int i = 0; i < parents.length; i++) {
      depth[i] = parents[i] == ROOT ? 0 : depth[parents[i]] + 1;
    }
    return depth;
  }

  /** The chain of {@code n} positions. */
  public static int[] chain(int n) {
    int[] p = new int[n];
    for (int i = 0; i < n; i++) {
      p[i] = i - 1;
    }
    return p;
  }

  /**
   * Opens the mask row of position {@code i} (sets 0 where it may attend, leaves the rest): its
   * ancestors and itself at {@code newAt + index}; the caller opens the cached prefix.
   */
  public static void openAncestors(float[] mask, int rowOffset, int newAt, int[] parents, int i) {
    for (int j = i; j != ROOT; j = parents[j]) {
      mask[rowOffset + newAt + j] = 0f;
    }
  }

  /**
   * Parents of positions {@code [from, to)} of a call cut into passes, relative to {@code from}: a
   * position whose parent ran in an earlier pass continues what that pass cached, which only a
   * chain position (parent = the position before) or a root of the first pass may do.
   *
   * @throws IllegalArgumentException when a tree does not fit in the pass
   */
  public static int[] chunk(int[] parents, int from, int to) {
    int[] p = new int[to - from];
    for (int i = from; i < to; i++) {
      int parent = parents[i];
      if (parent >= from) {
        p[i - from] = parent - from;
      } else if (parent == i - 1 || (parent == ROOT && from == 0)) {
        p[i - from] = ROOT;
      } else {
        throw new IllegalArgumentException("position " + i + " hangs under " + parent + ", which an earlier pass ran:"
            + " a tree must fit in the last pass");
      }
    }
    return p;
  }
}
