package dev.dsd.verification.window;

/**
 * Chooses the window k (draft tokens per round) and the depth D (rounds of one session in flight)
 * of pipelined speculation, maximising expected accepted tokens per second from running estimates
 * of per-token acceptance a, the network round trip, the stages' compute and the draft's time:
 *
 * <pre>
 *   T(k)    = t_draft(k) + rtt + C(k)          round trip of one round; C: all stages' compute
 *   I(k, D) = max(B(k), t_draft(k), T(k) / D)  interval between sends; B: the slowest stage's share
 *   s       = a^k                              a round stands whole (its last draft included)
 *   E[time]   = T + I s / (1 - s) + waste      from a correction to the next rejection
 *   E[tokens] = k s / (1 - s) + E[n | reject] + 1
 *   waste     = w (B + max(phi, lambda) C),  w = min(D - 1, T / I - 1)+ rounds in flight at a rejection
 * </pre>
 *
 * The rounds in flight at a rejection are cancelled: a cancelled round in a stage's call delays the
 * correction by up to B, and its compute was taken from whatever shares the stage's cores: other
 * sessions batched with it (lambda = (rows - 1) / rows of the calls this session's rounds ran in) or
 * other stages and the drafter on the same machine (phi, the share of compute that is not free:
 * 1 by default, which is what keeps pipelining off where compute, not the network, is the cost, as
 * on one machine at 0 ms; 0 for stages on machines of their own with nothing else to do). D = 1 is synchronous speculation: the model nests it, so the controller picks
 * pipelining only where the estimates say it pays.
 */
public final class PipelineController {
  /** Depth at most: beyond it a rejection cancels more than a round trip's worth of rounds anyway. */
  public static final int MAX_DEPTH = 8;
  private static final double DECAY = 0.9;
  /** Acceptance is capped below 1 so that the expected run before a rejection stays finite. */
  private static final double MAX_ACCEPTANCE = 0.98;

  /** A choice of window and depth. */
  public record Choice(int k, int depth) {}

  private final double phi;
  private final int kMin;
  private final int kMax;
  private final int depthMax;
  private double successes = 2; // prior a = 2/3, as the adaptive window's warm-up expects of a trained pair
  private double failures = 1;
  private final LinearFit draft = new LinearFit(DECAY);
  private final LinearFit compute = new LinearFit(DECAY);
  private double rtt = Double.NaN;
  private double bottleneckShare = 1; // slowest stage's compute / all stages' compute
  private double sharing = 1;

  /** k in {@code kMin..kMax} (equal for a fixed window), depth in 1..{@code depthMax}; compute is never free. */
  public PipelineController(int kMin, int kMax, int depthMax) {
    this(kMin, kMax, depthMax, 1);
  }

  /** {@code sharedCompute}: phi of the model, in [0, 1]. */
  public PipelineController(int kMin, int kMax, int depthMax, double sharedCompute) {
    if (!(sharedCompute >= 0 && sharedCompute <= 1)) {
      throw new IllegalArgumentException("shared compute share must be in [0, 1], got " + sharedCompute);
    }
    this.phi = sharedCompute;
    if (kMin < 1 || kMax < kMin || depthMax < 1 || depthMax > MAX_DEPTH) {
      throw new IllegalArgumentException("pipeline controller needs 1 <= kMin <= kMax and depth 1.." + MAX_DEPTH
          + ", got k " + kMin + ".." + kMax + ", depth " + depthMax);
    }
    this.kMin = kMin;
    this.kMax = kMax;
    this.depthMax = depthMax;
  }

  /**
   * One round's verdict.
   *
   * @param k drafts the round's rows verified
   * @param accepted how many of them stood
   * @param rejected whether the verdict rejected one (false: all stood)
   * @param draftNanos time the round's drafts took to draft
   * @param computeNanos all stages' compute for the round, or -1 when unknown
   * @param bottleneckNanos the slowest stage's compute, or -1
   * @param rttNanos the round's network time (wall time less compute and queueing), or -1
   * @param batchRows sessions' rounds in the busiest stage call that ran it (1: alone)
   */
  public synchronized void observe(int k, int accepted, boolean rejected, long draftNanos, long computeNanos,
      long bottleneckNanos, long rttNanos, int batchRows) {
    successes = DECAY * successes + accepted;
    failures = DECAY * failures + (rejected ? 1 : 0);
    if (k > 0) {
      draft.add(k, draftNanos);
    }
    if (computeNanos > 0) {
      compute.add(Math.max(1, k), computeNanos);
      if (bottleneckNanos > 0) {
        bottleneckShare = DECAY * bottleneckShare + (1 - DECAY) * Math.min(1, (double) bottleneckNanos / computeNanos);
      }
    }
    if (rttNanos >= 0) {
      rtt = Double.isNaN(rtt) ? rttNanos : DECAY * rtt + (1 - DECAY) * rttNanos;
    }
    if (batchRows >= 1) {
      sharing = DECAY * sharing + (1 - DECAY) * batchRows;
    }
  }

  /** Estimated per-token acceptance. */
  public synchronized double acceptance() {
    return Math.min(MAX_ACCEPTANCE, successes / (successes + failures));
  }

  /** The window and depth with the most expected tokens per second. */
  public synchronized Choice next() {
    Choice best = new Choice(kMin, 1);
    double bestRate = -1;
    for (int d = 1; d <= depthMax; d++) {
      for (int k = kMin; k <= kMax; k++) {
        double r = rate(k, d);
        if (r > bestRate * 1.0001) { // ties go to the shallower, shorter choice (less to cancel)
          bestRate = r;
          best = new Choice(k, d);
        }
      }
    }
    return best;
  }

  /** Expected accepted tokens per nanosecond with window k and depth d. */
  synchronized double rate(int k, int d) {
    double a = acceptance();
    double c = compute.at(k, 1);
    double b = c * bottleneckShare;
    double t = draft.at(k, 0) + (Double.isNaN(rtt) ? 0 : rtt) + c;
    double interval = Math.max(Math.max(b, draft.at(k, 0)), t / d);
    double s = Math.pow(a, k);
    double inFlight = Math.max(0, Math.min(d - 1, t / interval - 1));
    double lambda = (sharing - 1) / sharing;
    double waste = inFlight * (b + Math.max(phi, lambda) * c);
    double time = t + interval * s / (1 - s) + waste;
    double tokens = k * s / (1 - s) + acceptedBeforeRejection(a, k) + 1;
    return tokens / time;
  }

  @Override
  public synchronized String toString() {
    Choice c = next();
    return String.format("{k=%d depth=%d a=%.3f rttMs=%.1f computeMs(k)=%.2f bottleneck=%.2f draftMs(k)=%.2f rows=%.1f}",
        c.k(), c.depth(), acceptance(), Double.isNaN(rtt) ? -1 : rtt / 1e6, compute.at(c.k(), 1) / 1e6,
        bottleneckShare, draft.at(c.k(), 0) / 1e6, sharing);
  }

  /** E[accepted drafts | a round of k rejects one]. */
  static double acceptedBeforeRejection(double a, int k) {
    double sum = 0;
    double p = 1;
    for (int i = 0; i < k; i++) {
      sum += i * p * (1 - a);
      p *= a;
    }
    return sum / (1 - Math.pow(a, k));
  }
}
