package dev.dsd.verification.window;

/**
 * Adaptive window control: picks the k that maximises expected accepted tokens per second,
 *
 * <pre>
 *   E[tokens](k) = (1 - a^(k+1)) / (1 - a)        a: per-token acceptance rate
 *   T(k)         = t_draft(k) + rtt + t_verify(k)  t_draft 0 at k = 0 (no draft call at all);
 *                                                  t_draft, t_verify each fitted as c0 + c1 * k
 * </pre>
 *
 * from running estimates (exponentially weighted, so they follow a changing text or network). The
 * round trip the caller measures (verification wall time minus the stages' compute) is tracked on
 * its own, so the verify fit sees compute only and a network that changes moves T(k) at once. The
 * draft's time has a fixed part too: a draft node across the network costs a round trip per
 * proposal however long it is, and counting that as a per-token cost would make long windows look
 * dear exactly when they pay most. The DSD edge-cloud paper's AWC learns this with a small neural
 * predictor; this analytic controller uses the same measured quantities.
 *
 * <p>With {@code kMin = 0} the controller may turn speculation off for a while: when no window is
 * expected to beat plain decoding (low acceptance, a draft round trip that costs more than the
 * drafts bring) it returns 0, and probes the best window now and then (at growing intervals) so a
 * text that becomes predictable turns speculation back on. Before {@link #WARMUP_ROUNDS} rounds it
 * tries k in turn over a spread of values, so the verify-time fit has distinct points to stand on;
 * a window {@link #continuing} another one's estimates (the same route, an earlier request) skips
 * that warm-up.
 */
public final class AdaptiveWindow implements WindowPolicy {
  public static final int WARMUP_ROUNDS = 6;
  /** Rounds off before the first probe; doubled after each probe that finds speculation still loses. */
  public static final int FIRST_PROBE_AFTER = 8;
  /** Longest run of rounds off between probes. */
  public static final int MAX_PROBE_INTERVAL = 64;
  private static final double DECAY = 0.9;
  private static final int[] WARMUP = {2, 6, 4, 8, 3, 5};

  private final int kMin;
  private final int kMax;
  private final AcceptanceHazard hazard; // null: the geometric yield
  private final AcceptanceState acceptance;
  private final LinearFit draft;
  private final LinearFit verify;
  private double rtt = Double.NaN;
  private int rounds;
  private double sharing = 1; // rows of the stage calls this session's rounds ran in (1 = alone)
  private int offRounds;
  private int probeInterval = FIRST_PROBE_AFTER;

  public AdaptiveWindow(int kMin, int kMax) {
    this(kMin, kMax, null);
  }

  /**
   * A window whose expected yield per k comes from {@code hazard} (the learned controller, {@code
   * --spec learned}) instead of the geometric formula; null for the analytic one. Costs, warm-up and
   * probing are the same for both.
   */
  public AdaptiveWindow(int kMin, int kMax, AcceptanceHazard hazard) {
    if (kMin < 0 || kMax < Math.max(1, kMin)) {
      throw new IllegalArgumentException("window bounds must satisfy 0 <= kMin <= kMax, kMax >= 1, got " + kMin + ".."
          + kMax);
    }
    this.kMin = kMin;
    this.kMax = kMax;
    this.hazard = hazard;
    this.acceptance = new AcceptanceState();
    this.draft = new LinearFit(DECAY);
    this.verify = new LinearFit(DECAY);
  }

  private AdaptiveWindow(AdaptiveWindow o) {
    this.kMin = o.kMin;
    this.kMax = o.kMax;
    this.hazard = o.hazard;
    this.acceptance = o.acceptance.copy();
    this.draft = o.draft.copy();
    this.verify = o.verify.copy();
    this.rtt = o.rtt;
    this.rounds = o.rounds;
    // a new request is new text: if speculation was off, probe again soon rather than after the long wait
    this.offRounds = 0;
    this.probeInterval = FIRST_PROBE_AFTER;
  }

  /** A new window that starts from this one's estimates (warm-up included, if it was done). */
  public synchronized AdaptiveWindow continuing() {
    return new AdaptiveWindow(this);
  }

  @Override
  public synchronized int next() {
    if (rounds < WARMUP_ROUNDS) {
      return Math.max(Math.max(1, kMin), Math.min(kMax, WARMUP[rounds]));
    }
    int bestK = bestWindow(kMin);
    if (bestK > 0) {
      offRounds = 0;
      probeInterval = FIRST_PROBE_AFTER;
      return bestK;
    }
    if (++offRounds >= probeInterval) {
      // speculation has not paid for a while: try the best window again so the acceptance estimate
      // can notice text that drafts well now
      offRounds = 0;
      probeInterval = Math.min(MAX_PROBE_INTERVAL, probeInterval * 2);
      return bestWindow(1);
    }
    return 0;
  }

  private int bestWindow(int from) {
    double a = acceptance();
    double best = -1;
    int bestK = from;
    for (int k = from; k <= kMax; k++) {
      double yield = hazard == null ? expectedTokens(a, k) : hazard.expectedTokens(acceptance, k);
      double rate = yield / roundTime(k);
      if (rate > best) {
        best = rate;
        bestK = k;
      }
    }
    return bestK;
  }

  @Override
  public synchronized void observe(int k, int accepted, long draftNanos, long verifyNanos, long rttNanos) {
    if (k < 0) {
      return;
    }
    long net = Math.max(0, Math.min(rttNanos, verifyNanos));
    rtt = Double.isNaN(rtt) ? net : DECAY * rtt + (1 - DECAY) * net;
    verify.add(k, verifyNanos - net);
    if (k == 0) {
      return;
    }
    rounds++;
    acceptance.observe(k, Math.min(k, Math.max(0, accepted)));
    draft.add(k, draftNanos);
  }

  /** Estimated per-token acceptance rate. */
  public synchronized double acceptance() {
    return acceptance.rate();
  }

  /** Whether this window's yield comes from a learned model. */
  public boolean learned() {
    return hazard != null;
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
    return (k == 0 ? 0 : draft.at(k, 0)) + (Double.isNaN(rtt) ? 0 : rtt) + verify.at(k, 1)
        + (sharing - 1) * verify.slope() * k;
  }
}
