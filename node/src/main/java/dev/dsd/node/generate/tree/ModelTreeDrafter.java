package dev.dsd.node.generate.tree;

import dev.dsd.node.generate.PrefillChunks;
import dev.dsd.node.generate.VocabMask;
import dev.dsd.pipeline.runtime.ShardRunner;
import dev.dsd.pipeline.runtime.ShardSession;
import dev.dsd.pipeline.runtime.TreeShape;
import dev.dsd.verification.sampling.Distributions;
import dev.dsd.verification.tree.DraftTree;
import dev.dsd.verification.tree.TreeBudget;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * Grows draft trees with a small model run whole in this process, EAGLE-2 style (Li et al. 2024):
 * a candidate's score is the draft's probability of its whole path; each level the {@link #WIDTH}
 * best candidates of the newest level are run through the draft in one call under a tree mask and
 * each gets its {@link #CHILDREN} most likely next tokens as candidates; the tree is the best
 * candidates by score. The tree therefore widens where the draft is unsure (several children keep
 * high scores) and deepens where it is sure (one child keeps almost all of its parent's score).
 *
 * <p>Children are deterministic candidates (the draft's top tokens, distinct), so acceptance uses
 * the one-hot form of multi-draft sampling, exact at any temperature. Scores use the session's
 * temperature (1 for greedy sessions), so they estimate what the target will sample. The cache holds the accepted context; tree levels are appended while growing and dropped
 * after, and the accepted path is fed again (with the next token) at the next round, in one call.
 */
public final class ModelTreeDrafter implements TreeDrafter {
  /** Candidates taken under each expanded node. */
  public static final int CHILDREN = 8;
  /** Nodes expanded per level. */
  public static final int WIDTH = 8;
  /** Scores below this are not worth a position. */
  private static final double MIN_SCORE = 1e-4;

  private final ShardRunner runner;
  private final ShardSession session;
  private final double temperature;
  private final int vocab;
  private final int usable;
  private int[] pending; // accepted tokens not yet in the cache (the last one always)
  private double[] lastScores = new double[0];

  public ModelTreeDrafter(ShardRunner runner, ShardSession session, double temperature, int usable) {
    this.runner = runner;
    this.session = session;
    this.temperature = temperature;
    this.vocab = runner.config().vocabSize();
    this.usable = usable;
  }

  @Override
  public void start(int[] prompt) {
    if (prompt.length > 1) {
      int[] cuts = PrefillChunks.cuts(prompt.length - 1, 1, PrefillChunks.DEFAULT_TOKENS);
      for (int i = 0; i + 1 < cuts.length; i++) {
        runner.forwardTokens(session, Arrays.copyOfRange(prompt, cuts[i], cuts[i + 1]));
      }
    }
    pending = new int[] {prompt[prompt.length - 1]};
  }

  /** One candidate node: its token, parent candidate (-1: the root), path score and depth (1 = root's child). */
  private record Candidate(int token, int parent, double score, int depth, int index) {}

  @Override
  public DraftTree propose(int maxNodes, int maxDepth, TreeBudget budget) {
    float[] logits = runner.forwardTokens(session, pending);
    pending = new int[0];
    int base = session.length(); // the accepted context, the root included
    List<Candidate> all = new ArrayList<>();
    int[] fedAt = new int[0]; // candidate -> its index among the tree positions fed, or -1
    List<Integer> fedParents = new ArrayList<>(); // per fed position, its parent's fed index (-1: root)
    try {
      if (maxNodes > 0 && maxDepth > 0) {
        addChildren(all, -1, 1.0, 1, logits, logits.length / vocab - 1);
      }
      for (int depth = 1; depth < maxDepth; depth++) {
        int level = depth;
        double floor = kthScore(all, maxNodes);
        // positions fed stay within the budget and the session: only a tree's inner nodes need feeding
        int room = Math.min(maxNodes, session.maxTokens() - base) - fedParents.size();
        List<Candidate> frontier = all.stream().filter(c -> c.depth() == level && c.score() >= Math.max(MIN_SCORE, floor))
            .sorted(Comparator.comparingDouble(Candidate::score).reversed()).limit(Math.max(0, Math.min(WIDTH, room)))
            .toList();
        if (frontier.isEmpty()) {
          break; // nothing at this level can still enter the best maxNodes
        }
        fedAt = Arrays.copyOf(fedAt, all.size());
        int[] tokens = new int[frontier.size()];
        for (int i = 0; i < frontier.size(); i++) {
          Candidate c = frontier.get(i);
          tokens[i] = c.token();
          fedParents.add(c.parent() < 0 ? TreeShape.ROOT : fedAt[c.parent()]);
          fedAt[c.index()] = fedParents.size() - 1;
        }
        int[] parents = fedParents.stream().mapToInt(Integer::intValue).toArray();
        float[] out = runner.forwardTree(session, tokens, base, parents);
        for (int i = 0; i < frontier.size(); i++) {
          Candidate c = frontier.get(i);
          addChildren(all, c.index(), c.score(), depth + 1, out, i);
        }
      }
    } finally {
      session.truncate(base); // the tree's levels leave the cache; the root stays
    }
    return select(all, maxNodes, budget);
  }

  /** The score of the k-th best candidate so far (0 when there are fewer): deeper ones below it cannot enter. */
  private static double kthScore(List<Candidate> all, int k) {
    if (all.size() < k) {
      return 0;
    }
    double[] s = all.stream().mapToDouble(Candidate::score).sorted().toArray();
    return s[s.length - k];
  }

  private void addChildren(List<Candidate> all, int parent, double parentScore, int depth, float[] logits, int row) {
    VocabMask.applyRow(logits, row * vocab, vocab, usable);
    // scores rank candidates and estimate acceptance; top-p's renormalization (at most 1/top-p per
    // level) is not worth a sort of the vocabulary per node, and candidates need no exact q: any
    // deterministic candidates are verified exactly
    double[] q = Distributions.softmax(logits, row * vocab, vocab, temperature > 0 ? temperature : 1.0);
    int[] top = new int[CHILDREN];
    Arrays.fill(top, -1);
    for (int v = 0; v < vocab; v++) { // the few best of the row, ties to the lower id
      if (q[v] <= 0) {
        continue;
      }
      for (int j = 0; j < CHILDREN; j++) {
        if (top[j] < 0 || q[v] > q[top[j]]) {
          System.arraycopy(top, j, top, j + 1, CHILDREN - j - 1);
          top[j] = v;
          break;
        }
      }
    }
    for (int t : top) {
      if (t >= 0) {
        all.add(new Candidate(t, parent, parentScore * q[t], depth, all.size()));
      }
    }
  }

  /**
   * The best candidates by score, as many as the budget picks. A child never scores above its
   * parent and ties go to the shallower, earlier candidate, so every prefix of the order is a tree.
   */
  private DraftTree select(List<Candidate> all, int maxNodes, TreeBudget budget) {
    List<Candidate> order = new ArrayList<>(all);
    order.sort(Comparator.comparingDouble(Candidate::score).reversed().thenComparingInt(Candidate::depth)
        .thenComparingInt(Candidate::index));
    if (order.size() > maxNodes) {
      order = order.subList(0, maxNodes);
    }
    double[] scores = order.stream().mapToDouble(Candidate::score).toArray();
    int n = Math.max(0, Math.min(order.size(), budget.choose(scores)));
    List<Candidate> chosen = new ArrayList<>(order.subList(0, n));
    chosen.sort(Comparator.comparingInt(Candidate::depth).thenComparingInt(Candidate::index)); // parents first
    int[] nodeOf = new int[all.size()];
    int[] tokens = new int[n];
    int[] parents = new int[n];
    lastScores = new double[n];
    for (int i = 0; i < n; i++) {
      Candidate c = chosen.get(i);
      nodeOf[c.index()] = i;
      tokens[i] = c.token();
      parents[i] = c.parent() < 0 ? TreeShape.ROOT : nodeOf[c.parent()];
      lastScores[i] = c.score();
    }
    return new DraftTree(tokens, parents, new double[n + 1][]);
  }

  @Override
  public double[] lastScores() {
    return lastScores.clone();
  }

  @Override
  public void accepted(DraftTree tree, int[] path, int next) {
    int[] p = Arrays.copyOf(tree.pathTokens(path), path.length + 1);
    p[path.length] = next;
    pending = p;
  }

  @Override
  public void close() {
    session.close();
  }
}
