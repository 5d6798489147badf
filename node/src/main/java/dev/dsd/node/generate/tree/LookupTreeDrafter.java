package dev.dsd.node.generate.tree;

import dev.dsd.node.generate.PromptLookupDrafter;
import dev.dsd.pipeline.runtime.TreeShape;
import dev.dsd.verification.tree.DraftTree;
import dev.dsd.verification.tree.TreeBudget;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Token trees without a draft model, from prompt lookup: where the context's last n-gram occurred
 * several times before, each occurrence's continuation is a branch, merged into a trie so that
 * shared beginnings are one path. A chain of prompt lookup bets on the latest occurrence only; code
 * repeats with variations (the same call with other arguments, sibling branches of an if), and a
 * tree verifies every remembered variation in the same pass. A node's score is the share of the
 * occurrences that continue through it, so the budget keeps what most of them agree on first.
 * Candidates are deterministic and siblings distinct, so acceptance is exact at any temperature.
 */
public final class LookupTreeDrafter implements TreeDrafter {
  /** Earlier occurrences whose continuations become branches. */
  public static final int BRANCHES = 4;

  private final PromptLookupDrafter lookup = new PromptLookupDrafter();
  private double[] lastScores = new double[0];

  @Override
  public void start(int[] prompt) {
    lookup.start(prompt);
  }

  /** A trie node: its token, parent (index into the trie, or ROOT) and how many continuations pass through it. */
  private static final class Node {
    final int token;
    final int parent;
    int count;

    Node(int token, int parent) {
      this.token = token;
      this.parent = parent;
    }
  }

  @Override
  public DraftTree propose(int maxNodes, int maxDepth, TreeBudget budget) {
    int[][] branches = lookup.continuations(BRANCHES, Math.max(0, maxDepth));
    List<Node> trie = new ArrayList<>();
    for (int[] branch : branches) {
      int at = TreeShape.ROOT;
      for (int token : branch) {
        int child = find(trie, at, token);
        if (child < 0) {
          if (trie.size() >= maxNodes) {
            break; // the more recent occurrences came first and are kept
          }
          trie.add(new Node(token, at));
          child = trie.size() - 1;
        }
        trie.get(child).count++;
        at = child;
      }
    }
    // by share of occurrences; a child never has more than its parent and comes after it, so every
    // prefix of this order is a tree
    Integer[] order = new Integer[trie.size()];
    for (int i = 0; i < order.length; i++) {
      order[i] = i;
    }
    Arrays.sort(order, (a, b) -> trie.get(a).count != trie.get(b).count
        ? Integer.compare(trie.get(b).count, trie.get(a).count) : Integer.compare(a, b));
    double[] scores = new double[order.length];
    for (int i = 0; i < order.length; i++) {
      scores[i] = trie.get(order[i]).count / (double) branches.length;
    }
    int n = Math.max(0, Math.min(order.length, budget.choose(scores)));
    Integer[] chosen = Arrays.copyOf(order, n);
    Arrays.sort(chosen); // parents first
    int[] nodeOf = new int[trie.size()];
    int[] tokens = new int[n];
    int[] parents = new int[n];
    lastScores = new double[n];
    for (int i = 0; i < n; i++) {
      Node node = trie.get(chosen[i]);
      nodeOf[chosen[i]] = i;
      tokens[i] = node.token;
      parents[i] = node.parent == TreeShape.ROOT ? TreeShape.ROOT : nodeOf[node.parent];
      lastScores[i] = node.count / (double) branches.length;
    }
    return new DraftTree(tokens, parents, new double[n + 1][]);
  }

  private static int find(List<Node> trie, int parent, int token) {
    for (int i = 0; i < trie.size(); i++) {
      if (trie.get(i).parent == parent && trie.get(i).token == token) {
        return i;
      }
    }
    return -1;
  }

  @Override
  public double[] lastScores() {
    return lastScores.clone();
  }

  @Override
  public void accepted(DraftTree tree, int[] path, int next) {
    int[] kept = tree.pathTokens(path);
    lookup.accepted(lookup.length(), kept, kept.length, next);
  }

  @Override
  public void close() {
    lookup.close();
  }
}
