package dev.dsd.verification.tree;

import dev.dsd.pipeline.runtime.TreeShape;
import dev.dsd.verification.acceptance.Relaxation;
import dev.dsd.verification.acceptance.TargetScores;
import dev.dsd.verification.sampling.Distributions;
import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Multi-draft speculative sampling (SpecInfer, Miao et al. 2024, Algorithm 2 "multi-step
 * speculative sampling"): at a node with target distribution p, its children are tried in order;
 * child x (drawn from q) is accepted with probability min(1, p(x)/q(x)), and on rejection p becomes
 * norm(max(0, p - q)) for the next sibling. Accepting moves down to that child with the target's
 * distribution there; when every child is rejected the next token is drawn from what is left of p,
 * and at a leaf (a node without children) from p itself. Deterministic candidates count as
 * q = one-hot: rejecting x then just removes x from p, which makes the rule "draw from p, try the
 * candidates in order". Either way each output token is distributed exactly as the target samples it
 * (a chi-square test checks first and later positions).
 *
 * <p>p is the session's processed distribution (temperature and top-p), as the target's scores give
 * it; q must be the draft's after the same temperature and top-p.
 *
 * <p>With a {@link Relaxation} (adaptive verification, lossy) a child the test rejects is accepted
 * anyway where the relaxation keeps it at its parent's row, as {@code SpeculativeSampling} does for
 * chains; the random stream is consumed as without it.
 */
public final class MultiDraftSampling implements TreeRule {
  private final SplittableRandom random;
  private final Relaxation relaxation;

  public MultiDraftSampling(long seed) {
    this(seed, Relaxation.NEVER);
  }

  public MultiDraftSampling(long seed, Relaxation relaxation) {
    this.random = new SplittableRandom(seed);
    this.relaxation = relaxation;
  }

  @Override
  public Verdict decide(DraftTree tree, TargetScores target) {
    int[] path = new int[tree.size()];
    int n = 0;
    int node = TreeShape.ROOT;
    double[] p = target.distribution(0).clone();
    descend:
    while (true) {
      double[] q = tree.childDistribution(node);
      for (int c : tree.children(node)) {
        int x = tree.tokens()[c];
        double qx = q == null ? 1.0 : q[x];
        if (!(qx > 0)) {
          throw new IllegalArgumentException("draft token " + x + " of node " + c + " has zero draft probability");
        }
        if (random.nextDouble() < Math.min(1.0, p[x] / qx) || relaxation.keep(node + 1, x, target)) {
          path[n++] = c;
          node = c;
          p = target.distribution(c + 1).clone();
          continue descend;
        }
        p = residual(p, q, x);
      }
      return new Verdict(Arrays.copyOf(path, n), Distributions.draw(p, random.nextDouble()));
    }
  }

  @Override
  public boolean lossless() {
    return relaxation == Relaxation.NEVER;
  }

  /** norm(max(0, p - q)), q one-hot at x when null; p itself if nothing is left (only by rounding). */
  static double[] residual(double[] p, double[] q, int x) {
    double[] r = new double[p.length];
    double mass = 0;
    for (int v = 0; v < p.length; v++) {
      double qv = q == null ? (v == x ? 1.0 : 0.0) : q[v];
      r[v] = Math.max(0, p[v] - qv);
      mass += r[v];
    }
    if (!(mass > 1e-12)) {
      return p;
    }
    for (int v = 0; v < r.length; v++) {
      r[v] /= mass;
    }
    return r;
  }
}
