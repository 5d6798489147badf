package dev.dsd.verification.tree;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.verification.acceptance.TargetScores;
import dev.dsd.verification.sampling.Distributions;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * Tree acceptance on a tiny "model": next-token distributions that are a fixed pseudo-random
 * function of the whole context, one for the target (p, at temperature 0.8 and top-p 0.9, so some
 * tokens have no mass) and a different one for the draft (q). Generation runs round after round
 * on trees grown from q; the first two output tokens must be distributed as the target samples them.
 */
class TreeRulesTest {
  static final int V = 6;
  static final double T = 0.8;

  static final java.util.Map<Long, double[]> MEMO = new java.util.HashMap<>();

  static double[] dist(int[] context, long salt, double topP) {
    long h = salt;
    for (int t : context) {
      h = h * 1_000_003L + t + 17;
    }
    long key = h;
    return MEMO.computeIfAbsent(key, k -> compute(key, topP));
  }

  static double[] compute(long h, double topP) {
    SplittableRandom r = new SplittableRandom(h);
    float[] logits = new float[V];
    for (int v = 0; v < V; v++) {
      logits[v] = (float) (r.nextGaussian() * 1.5);
    }
    return Distributions.topP(Distributions.softmax(logits, 0, V, T), topP);
  }

  static double[] target(int[] ctx) {
    return dist(ctx, 1, 0.9);
  }

  static double[] draft(int[] ctx) {
    return dist(ctx, 2, 1.0);
  }

  static int[] plus(int[] a, int... b) {
    int[] out = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }

  /** How a test grows a tree on a context. */
  interface Grower {
    DraftTree grow(int[] ctx, SplittableRandom r);
  }

  /** Deterministic candidates: the draft's top {@code widths[d]} tokens at each node of depth d. */
  static Grower topK(int... widths) {
    return (ctx, r) -> {
      List<Integer> tokens = new ArrayList<>();
      List<Integer> parents = new ArrayList<>();
      List<int[]> paths = new ArrayList<>();
      List<Integer> frontier = List.of(-1);
      for (int w : widths) {
        List<Integer> next = new ArrayList<>();
        for (int node : frontier) {
          int[] c = node < 0 ? ctx : paths.get(node);
          double[] q = draft(c);
          Integer[] order = new Integer[V];
          for (int v = 0; v < V; v++) {
            order[v] = v;
          }
          Arrays.sort(order, (a, b) -> Double.compare(q[b], q[a]));
          for (int k = 0; k < w; k++) {
            tokens.add(order[k]);
            parents.add(node);
            paths.add(plus(c, order[k]));
            next.add(tokens.size() - 1);
          }
        }
        frontier = next;
      }
      return new DraftTree(tokens.stream().mapToInt(Integer::intValue).toArray(),
          parents.stream().mapToInt(Integer::intValue).toArray(), new double[tokens.size() + 1][]);
    };
  }

  /** Independent draws from q: {@code draws[d]} children at each node of depth d (tokens may repeat). */
  static Grower sampled(int... draws) {
    return (ctx, r) -> {
      List<Integer> tokens = new ArrayList<>();
      List<Integer> parents = new ArrayList<>();
      List<int[]> paths = new ArrayList<>();
      List<double[]> dists = new ArrayList<>();
      dists.add(draft(ctx));
      List<Integer> frontier = List.of(-1);
      for (int w : draws) {
        List<Integer> next = new ArrayList<>();
        for (int node : frontier) {
          int[] c = node < 0 ? ctx : paths.get(node);
          double[] q = dists.get(node + 1);
          for (int k = 0; k < w; k++) {
            int x = Distributions.draw(q, r.nextDouble());
            tokens.add(x);
            parents.add(node);
            paths.add(plus(c, x));
            dists.add(draft(plus(c, x)));
            next.add(tokens.size() - 1);
          }
        }
        frontier = next;
      }
      return new DraftTree(tokens.stream().mapToInt(Integer::intValue).toArray(),
          parents.stream().mapToInt(Integer::intValue).toArray(), dists.toArray(new double[0][]));
    };
  }

  /** The target's scores over a tree: row 0 at the context, row i+1 after node i's path. */
  static TargetScores scores(int[] ctx, DraftTree tree) {
    double[][] rows = new double[tree.size() + 1][];
    rows[0] = target(ctx);
    for (int i = 0; i < tree.size(); i++) {
      rows[i + 1] = target(plus(ctx, tree.pathTokens(tree.pathTo(i))));
    }
    return rows(rows);
  }

  /** Scores whose row r is the distribution {@code p[r]} over {@link #V} tokens. */
  static TargetScores rows(double[][] p) {
    return new TargetScores() {
      @Override
      public int vocab() {
        return V;
      }

      @Override
      public int rows() {
        return p.length;
      }

      @Override
      public int argmax(int row) {
        int best = 0;
        for (int v = 1; v < V; v++) {
          best = p[row][v] > p[row][best] ? v : best;
        }
        return best;
      }

      @Override
      public double[] distribution(int row) {
        return p[row];
      }
    };
  }

  /** The first {@code n} tokens generated from {@code ctx} by tree rounds. */
  static int[] generate(int[] ctx, int n, Grower g, TreeRule rule, SplittableRandom r) {
    int[] out = new int[0];
    while (out.length < n) {
      int[] c = plus(ctx, out);
      DraftTree tree = g.grow(c, r);
      TreeRule.Verdict v = rule.decide(tree, scores(c, tree));
      out = plus(plus(out, tree.pathTokens(v.path())), v.next());
    }
    return Arrays.copyOf(out, n);
  }

  /** Chi-square statistic over cells with expected count >= 5 (the rest pooled); fails on mass where p has none. */
  static void assertFits(long[] observed, double[] p, long n, String what) {
    double stat = 0;
    double pooledE = 0;
    long pooledO = 0;
    int cells = 0;
    for (int i = 0; i < p.length; i++) {
      if (p[i] == 0) {
        assertEquals(0, observed[i], what + ": cell " + i + " has no target mass but was produced");
        continue;
      }
      double e = p[i] * n;
      if (e < 5) {
        pooledE += e;
        pooledO += observed[i];
        continue;
      }
      stat += (observed[i] - e) * (observed[i] - e) / e;
      cells++;
    }
    if (pooledE > 0) {
      stat += (pooledO - pooledE) * (pooledO - pooledE) / Math.max(pooledE, 1e-9);
      cells++;
    }
    int df = cells - 1;
    // Wilson-Hilferty: the chi-square quantile at 1 - 0.001 (z = 3.09)
    double a = 2.0 / (9 * df);
    double critical = df * Math.pow(1 - a + 3.09 * Math.sqrt(a), 3);
    assertTrue(stat < critical, what + ": chi-square " + stat + " >= " + critical + " (" + df + " df)");
  }

  @Test
  void treeSamplingMatchesTheTargetAtFirstAndSecondPositions() {
    Grower[] growers = {topK(3, 2, 1), sampled(3, 1, 1), topK(1, 1, 1, 1), sampled(1, 2)};
    int[][] contexts = {{1, 4}, {5}};
    int n = 15_000;
    for (int g = 0; g < growers.length; g++) {
      for (int[] ctx : contexts) {
        MultiDraftSampling rule = new MultiDraftSampling(100 + g);
        SplittableRandom r = new SplittableRandom(7 + g);
        long[] first = new long[V];
        long[] pair = new long[V * V];
        for (int i = 0; i < n; i++) {
          int[] out = generate(ctx, 2, growers[g], rule, r);
          first[out[0]]++;
          pair[out[0] * V + out[1]]++;
        }
        double[] p1 = target(ctx);
        double[] p12 = new double[V * V];
        for (int a = 0; a < V; a++) {
          double[] p2 = target(plus(ctx, a));
          for (int b = 0; b < V; b++) {
            p12[a * V + b] = p1[a] * p2[b];
          }
        }
        String what = "grower " + g + " context " + Arrays.toString(ctx);
        assertFits(first, p1, n, what + " first token");
        assertFits(pair, p12, n, what + " first two tokens");
      }
    }
  }

  /** The same exactness for following one target draw per node (what a last stage sends). */
  @Test
  void followingTargetDrawsMatchesTheTarget() {
    Grower[] growers = {topK(3, 2, 1), topK(1, 1, 1, 1)};
    int n = 15_000;
    int[] ctx = {1, 4};
    for (int g = 0; g < growers.length; g++) {
      SplittableRandom r = new SplittableRandom(11 + g);
      FollowSamples follow = new FollowSamples();
      TreeRule rule = (tree, scores) -> follow.decide(tree, SampledScores.draw(scores, r.nextLong()));
      long[] pair = new long[V * V];
      long[] first = new long[V];
      for (int i = 0; i < n; i++) {
        int[] out = generate(ctx, 2, growers[g], rule, r);
        first[out[0]]++;
        pair[out[0] * V + out[1]]++;
      }
      double[] p1 = target(ctx);
      double[] p12 = new double[V * V];
      for (int a = 0; a < V; a++) {
        double[] p2 = target(plus(ctx, a));
        for (int b = 0; b < V; b++) {
          p12[a * V + b] = p1[a] * p2[b];
        }
      }
      assertFits(first, p1, n, "follow grower " + g + " first token");
      assertFits(pair, p12, n, "follow grower " + g + " first two tokens");
    }
  }

  @Test
  void greedyFollowsTheArgmaxDownTheTree() {
    int[] ctx = {2, 3};
    DraftTree tree = topK(3, 3, 3).grow(ctx, new SplittableRandom(1));
    TargetScores s = scores(ctx, tree);
    TreeRule.Verdict v = new GreedyTree().decide(tree, s);
    int[] expected = new int[0];
    int[] c = ctx;
    for (int i = 0; i < v.accepted() + 1; i++) { // the target's own greedy continuation
      double[] p = target(c);
      int best = 0;
      for (int t = 1; t < V; t++) {
        best = p[t] > p[best] ? t : best;
      }
      expected = plus(expected, best);
      c = plus(c, best);
    }
    assertArrayEquals(expected, plus(tree.pathTokens(v.path()), v.next()));
    assertTrue(v.accepted() <= 3);
    // an empty tree: the root's argmax only
    assertEquals(0, new GreedyTree().decide(DraftTree.empty(), scores(ctx, DraftTree.empty())).accepted());
  }
}
