package dev.dsd.testnet.sim;

import dev.dsd.verification.window.AcceptanceHazard;
import dev.dsd.verification.window.AcceptanceState;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Trains the learned window controller's {@link AcceptanceHazard} on acceptance traces: logistic
 * regression, fitted by Newton's method (seven weights, so the exact Hessian is cheap and the fit
 * needs no tuning), of whether draft j stands given drafts 1..j-1 stood and the controller's state.
 *
 * <p>Examples come from replaying each trace through the same {@link AcceptanceState} the
 * controller keeps. A greedy trace says, at every output position, how many drafts the target
 * accepts, so each visited position labels every j up to the longest window. The windows that move
 * the replay along are drawn at random (1..{@link #EXPLORE_MAX_WINDOW}), so the state covers what
 * any policy might see, not one policy's path. A sampled trace holds real rounds at a few fixed
 * windows: a round of window k that accepted a labels j = 1..min(a + 1, k), since nothing is known
 * past the first rejection or the window's end.
 */
public final class WindowTrainer {
  /** Windows the replay draws from, to move along a greedy trace. */
  static final int EXPLORE_MAX_WINDOW = 8;
  private static final double L2 = 1e-3;
  private static final int NEWTON_STEPS = 30;

  /** A fitted model with its log loss on the examples of the held-out traces, next to the geometric one's. */
  public record Result(AcceptanceHazard model, int trainExamples, int heldOutExamples, double heldOutLogLoss,
      double geometricLogLoss) {}

  /** One labelled example: the features for draft j and whether it stood. */
  record Example(double[] x, boolean accepted, double rate) {}

  private WindowTrainer() {}

  public static Result train(List<AcceptanceTrace> training, List<AcceptanceTrace> heldOut, int kMax, long seed,
      Map<String, String> provenance) {
    List<Example> train = examples(training, kMax, seed);
    List<Example> held = examples(heldOut, kMax, seed + 1);
    if (train.isEmpty()) {
      throw new IllegalArgumentException("the training traces yield no examples");
    }
    double[] w = fit(train);
    AcceptanceHazard model = new AcceptanceHazard(w, provenance);
    return new Result(model, train.size(), held.size(), logLoss(held, w, false), logLoss(held, w, true));
  }

  static List<Example> examples(List<AcceptanceTrace> traces, int kMax, long seed) {
    SplittableRandom rng = new SplittableRandom(seed);
    List<Example> out = new ArrayList<>();
    for (AcceptanceTrace t : traces) {
      for (AcceptanceTrace.Prompt p : t.prompts()) {
        if (p.match() != null) {
          greedy(p.match(), kMax, rng, out);
        } else {
          p.rounds().forEach((k, accepted) -> sampled(k, accepted, out));
        }
      }
    }
    return out;
  }

  private static void greedy(int[] match, int kMax, SplittableRandom rng, List<Example> out) {
    AcceptanceState s = new AcceptanceState();
    int pos = 0;
    while (pos < match.length) {
      for (int j = 1; j <= kMax && match[pos] >= j - 1; j++) {
        out.add(new Example(s.features(j), match[pos] >= j, s.rate()));
      }
      int k = 1 + rng.nextInt(EXPLORE_MAX_WINDOW);
      int a = Math.min(k, match[pos]);
      s.observe(k, a);
      pos += a + 1;
    }
  }

  private static void sampled(int k, int[] accepted, List<Example> out) {
    AcceptanceState s = new AcceptanceState();
    for (int a0 : accepted) {
      int a = Math.min(k, a0);
      for (int j = 1; j <= Math.min(a + 1, k); j++) {
        out.add(new Example(s.features(j), j <= a, s.rate()));
      }
      s.observe(k, a);
    }
  }

  /** Newton's method on the L2-regularized logistic log loss. */
  static double[] fit(List<Example> data) {
    int d = AcceptanceState.FEATURES.size();
    double[] w = new double[d];
    for (int step = 0; step < NEWTON_STEPS; step++) {
      double[] g = new double[d];
      double[][] h = new double[d][d];
      for (Example e : data) {
        double p = sigmoid(dot(w, e.x()));
        double r = p - (e.accepted() ? 1 : 0);
        double v = p * (1 - p);
        for (int i = 0; i < d; i++) {
          g[i] += r * e.x()[i];
          for (int j = 0; j < d; j++) {
            h[i][j] += v * e.x()[i] * e.x()[j];
          }
        }
      }
      for (int i = 0; i < d; i++) {
        g[i] = g[i] / data.size() + L2 * w[i];
        for (int j = 0; j < d; j++) {
          h[i][j] = h[i][j] / data.size() + (i == j ? L2 : 0);
        }
      }
      double[] delta = solve(h, g);
      double change = 0;
      for (int i = 0; i < d; i++) {
        w[i] -= delta[i];
        change = Math.max(change, Math.abs(delta[i]));
      }
      if (change < 1e-9) {
        break;
      }
    }
    return w;
  }

  /** Mean log loss of the model, or with {@code geometric} of the analytic controller's constant rate. */
  static double logLoss(List<Example> data, double[] w, boolean geometric) {
    if (data.isEmpty()) {
      return Double.NaN;
    }
    double sum = 0;
    for (Example e : data) {
      double p = geometric ? e.rate() : sigmoid(dot(w, e.x()));
      p = Math.min(1 - 1e-9, Math.max(1e-9, p));
      sum -= Math.log(e.accepted() ? p : 1 - p);
    }
    return sum / data.size();
  }

  private static double sigmoid(double z) {
    return 1 / (1 + Math.exp(-z));
  }

  private static double dot(double[] a, double[] b) {
    double s = 0;
    for (int i = 0; i < a.length; i++) {
      s += a[i] * b[i];
    }
    return s;
  }

  /** Solves h x = g by Gaussian elimination with partial pivoting (h is small and positive definite). */
  static double[] solve(double[][] h, double[] g) {
    int n = g.length;
    double[][] a = new double[n][n + 1];
    for (int i = 0; i < n; i++) {
      System.arraycopy(h[i], 0, a[i], 0, n);
      a[i][n] = g[i];
    }
    for (int c = 0; c < n; c++) {
      int piv = c;
      for (int r = c + 1; r < n; r++) {
        if (Math.abs(a[r][c]) > Math.abs(a[piv][c])) {
          piv = r;
        }
      }
      double[] tmp = a[c];
      a[c] = a[piv];
      a[piv] = tmp;
      if (Math.abs(a[c][c]) < 1e-12) {
        throw new IllegalArgumentException("the examples do not determine the model (singular Hessian)");
      }
      for (int r = c + 1; r < n; r++) {
        double f = a[r][c] / a[c][c];
        for (int k = c; k <= n; k++) {
          a[r][k] -= f * a[c][k];
        }
      }
    }
    double[] x = new double[n];
    for (int i = n - 1; i >= 0; i--) {
      double s = a[i][n];
      for (int k = i + 1; k < n; k++) {
        s -= a[i][k] * x[k];
      }
      x[i] = s / a[i][i];
    }
    return x;
  }
}
