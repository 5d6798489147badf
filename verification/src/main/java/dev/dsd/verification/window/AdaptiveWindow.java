package dev.dsd.verification.window;

/**
 * Adaptive window control: picks the k that maximises expected accepted tokens per second,
 *
 * <pre>
 *   E[tokens](k) = (1 - a^(k+1)) / (1 - a)        a: per-token acceptance rate
 *   T(k)         = t_draft(k) + t_verify(k)        each fitted as c0 + c1 * k; network inside c0
 * </pre>
 *
 * from running estimates (exponentially weighted, so they follow a changing text or network). The
 * draft's time has a fixed part too: a draft node across the network costs a round trip per
 * proposal however long it is, and counting that as a per-token cost would make long windows look
 * dear exactly when they pay most. The
 * DSD edge-cloud paper's AWC learns this with a small neural predictor; this analytic controller
 * uses the same measured quantities. Before {@link #WARMUP_ROUNDS} rounds it tries k in turn over a
 * spread of values, so the verify-time fit has distinct points to stand on.
 */
public final class AdaptiveWindow implements WindowPolicy {
  public static final int WARMUP_ROUNDS = 6;
  private static final double DECAY = 0.9;
  private static final int[] WARMUP = {2, 6, 4, 8, 3, 5};

  private final int kMin;
  private final int kMax;
  private double successes = 1;
  private double failures = 1;
  private final LinearFit draft = new LinearFit();
  private final LinearFit verify = new LinearFit();
  private int rounds;
  private double sharing = 1; // rows of the stage calls this session's rounds ran in (1 = alone)

  public AdaptiveWindow(int kMin, int kMax) {
    if (kMin < 1 || kMax < kMin) {
      throw new IllegalArgumentException("window bounds must satisfy 1 <= kMin <= kMax, got " + kMin + ".." + kMax);
    }
    this.kMin = kMin;
    this.kMax = kMax;
  }

  @Override
  public synchronized int next() {
    if (rounds < WARMUP_ROUNDS) {
      return Math.max(kMin, Math.min(kMax, WARMUP[rounds]));
    }
    double a = acceptance();
    double best = -1;
    int bestK = kMin;
    for (int k = kMin; k <= kMax; k++) {
      double rate = expectedTokens(a, k) / roundTime(k);
      if (rate > best) {
        best = rate;
        bestK = k;
      }
    }
    return bestK;
  }

  @Override
  public synchronized void observe(int k, int accepted, long draftNanos, long verifyNanos, long rttNanos) {
    if (k <= 0) {
      return;
    }
    rounds++;
    successes = DECAY * successes + accepted;
    failures = DECAY * failures + (accepted < k ? 1 : 0);
    draft.add(k, draftNanos);
    verify.add(k, verifyNanos);
  }

  /** Estimated per-token acceptance rate. */
  public synchronized double acceptance() {
    return successes / (successes + failures);
  }

  /** Expected tokens one round yields with window k (accepted drafts plus the target's own token). */
  static double expectedTokens(double a, int k) {
    return a >= 1 ? k + 1 : (1 - Math.pow(a, k + 1)) / (1 - a);
  }

  /**
   * How many sessions' rounds the stages ran this session's last round with (the most of any stage).
   * Under load, a draft token's cost is not only what it adds to this session's round: it lengthens
   * the shared call for every session in it. For throughput the per-token verify cost counts once
   * per row, so when calls are compute-bound (a steep slope) k shrinks as batches grow, and when
   * they are bound by reading weights (a flat slope) k stays where latency puts it.
   */
  public synchronized void sharing(double rows) {
    if (rows >= 1 && Double.isFinite(rows)) {
      sharing = DECAY * sharing + (1 - DECAY) * rows;
    }
  }

  /** Estimated cost of a round with window k, in nanoseconds: its wall time plus what it costs others. */
  synchronized double roundTime(int k) {
    return draft.at(k, 0) + verify.at(k, 1) + (sharing - 1) * verify.slope() * k;
  }

  /** Exponentially weighted least squares for t = c0 + c1 k. */
  private static final class LinearFit {
    private double sw;
    private double sk;
    private double skk;
    private double st;
    private double skt;

    void add(int k, double t) {
      sw = DECAY * sw + 1;
      sk = DECAY * sk + k;
      skk = DECAY * skk + (double) k * k;
      st = DECAY * st + t;
      skt = DECAY * skt + k * t;
    }

    /** The fitted cost of one more k (c1 of {@link #at}), >= 0. */
    double slope() {
      return Math.max(0, (at(2, 0) - at(1, 0)));
    }

    /**
     * The fitted time at k, never below {@code floor}. A negative slope is noise (more tokens never
     * cost less), so it counts as flat; a negative intercept is folded into the slope the same way,
     * so the fit stays a cost that grows with k.
     */
    double at(int k, double floor) {
      if (sw == 0) {
        return floor;
      }
      double det = sw * skk - sk * sk;
      double c1 = det > 1e-9 ? (sw * skt - sk * st) / det : 0;
      double c0 = (st - c1 * sk) / sw;
      if (c1 < 0) {
        c1 = 0;
        c0 = st / sw;
      } else if (c0 < 0) {
        c0 = 0;
        c1 = skt / skk;
      }
      return Math.max(c0 + c1 * k, floor);
    }
  }
}
