package dev.dsd.verification.tree;

import dev.dsd.pipeline.runtime.TreeShape;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A tree of draft tokens growing from the root, the last accepted token (not itself a node). Node
 * {@code i} holds {@code tokens[i]} and hangs under {@code parents[i]}: an earlier node or
 * {@link TreeShape#ROOT}. The target scores it in one pass as {@code nodes + 1} rows: row 0 at the
 * root, row {@code i + 1} at node {@code i}.
 *
 * <p>{@code childDistributions[v + 1]} says how the children of {@code v} (of the root for v = -1)
 * were chosen: null when they are deterministic candidates (the draft's top tokens, prompt lookup),
 * which must then be distinct; otherwise the draft distribution q they were drawn from, each child
 * one independent draw (siblings may then repeat a token). Multi-draft speculative sampling needs
 * to know which ({@link MultiDraftSampling}).
 */
public record DraftTree(int[] tokens, int[] parents, double[][] childDistributions) {
  public DraftTree {
    if (tokens.length != parents.length || childDistributions.length != tokens.length + 1) {
      throw new IllegalArgumentException(tokens.length + " tokens, " + parents.length + " parents and "
          + childDistributions.length + " child distributions do not describe one tree");
    }
    if (tokens.length > 0) {
      String bad = TreeShape.problem(parents, TreeShape.MAX_NODES, TreeShape.MAX_DEPTH);
      if (bad != null) {
        throw new IllegalArgumentException(bad);
      }
    }
  }

  /** The tree with no drafts: the round scores the root only. */
  public static DraftTree empty() {
    return new DraftTree(new int[0], new int[0], new double[1][]);
  }

  /** A chain of drafts, each drawn from its row of {@code q} (null rows or null: deterministic). */
  public static DraftTree chain(int[] drafts, double[][] q) {
    double[][] dist = new double[drafts.length + 1][];
    for (int i = 0; i < drafts.length; i++) {
      dist[i] = q == null ? null : q[i];
    }
    return new DraftTree(drafts.clone(), TreeShape.chain(drafts.length), dist);
  }

  public int size() {
    return tokens.length;
  }

  /** Children of {@code node} ({@link TreeShape#ROOT} for the root) in index order. */
  public int[] children(int node) {
    int n = 0;
    for (int p : parents) {
      n += p == node ? 1 : 0;
    }
    int[] out = new int[n];
    for (int i = 0, j = 0; i < parents.length; i++) {
      if (parents[i] == node) {
        out[j++] = i;
      }
    }
    return out;
  }

  /** The first child of {@code node} ({@link TreeShape#ROOT} for the root) holding {@code token}, or -1. */
  public int child(int node, int token) {
    for (int i = 0; i < parents.length; i++) {
      if (parents[i] == node && tokens[i] == token) {
        return i;
      }
    }
    return -1;
  }

  /** The distribution the children of {@code node} were drawn from, or null for candidates. */
  public double[] childDistribution(int node) {
    return childDistributions[node + 1];
  }

  /** Depth of the deepest node (0 for the empty tree). */
  public int depth() {
    int max = 0;
    int[] d = TreeShape.depths(parents);
    for (int v : d) {
      max = Math.max(max, v + 1);
    }
    return max;
  }

  /** Tokens along the path root -> {@code node} (the root excluded). */
  public int[] pathTokens(int[] path) {
    int[] out = new int[path.length];
    for (int i = 0; i < path.length; i++) {
      out[i] = tokens[path[i]];
    }
    return out;
  }

  /** The node indices from the root's child down to {@code node}. */
  public int[] pathTo(int node) {
    List<Integer> p = new ArrayList<>();
    for (int j = node; j != TreeShape.ROOT; j = parents[j]) {
      p.add(0, j);
    }
    return p.stream().mapToInt(Integer::intValue).toArray();
  }

  @Override
  public String toString() {
    return "DraftTree" + Arrays.toString(tokens) + "/" + Arrays.toString(parents);
  }
}
