package dev.dsd.verification.window;

/**
 * Chooses the window k (draft tokens per round) and the depth D (rounds of one session in flight)
 * of pipelined speculation, maximising expected accepted tokens per second from running estimates
 * of the network round trip, the stages' compute, the draft's time, and the lengths of the runs of
 * drafts that stand before one is rejected:
 *
 * <pre>
 *   T(k)    = t_draft(k) + rtt + C(k)          round trip of one round; C: all stages' compute
 *   I(k, D) = max(B(k), t_draft(k), T(k) / D)  interval between sends; B: the slowest stage's share
 *   for a run of L standing drafts and the rejection after it, j = floor(L / k) rounds stand whole:
 *   tokens  = L + 1
 *   net     = T + j I + [w > 0] B + w lambda C  w = min(D - 1, T / I - 1)+ rounds in flight at the rejection
 *   cpu     = W (j + 1 + w),  W = t_draft + phi (C + min(rtt, C))
 *   time    = max(net, cpu)
 *   rate    = sum over runs of tokens / sum of time
 * </pre>
 *
 * Runs are taken as observed (the last {@link #RUNS} of them), not as a geometric law from a mean
 * acceptance: a pair that agrees in bursts (a repeated identifier, a closing bracket) stands for
 * many rounds at a time, which is exactly where rounds in flight pay, and a per-token rate would
 * average that away. Until {@link #MIN_RUNS} runs are in, a geometric law at the running acceptance
 * stands in.
 *
 * <p>The rounds in flight at a rejection are cancelled. In the network ({@code net}) they cost the
 * correction at most one stage call it may queue behind (B), and what their compute takes from other
 * sessions batched with them (lambda = (rows - 1) / rows of the calls this session's rounds ran in).
 * On cores the stages and the drafter share ({@code cpu}, phi the share of compute that is not free:
 * 1 by default, as on one machine; 0 for stages on machines of their own) every round computed,
 * cancelled ones included, takes its compute and its protocol work; the latter is not measured
 * apart from the network time, so it is taken as the smaller of the compute and the round trip: on
 * loopback (0 ms) the whole round trip is such work and rounds in flight cannot win anything, over
 * long links only a little of it is. D = 1 is synchronous speculation: the model nests it, and a
 * depth above 1 is chosen only when it is expected to be {@link #MARGIN} faster than the best
 * synchronous choice, so estimation noise does not make pipelining lose.
 */
public final class PipelineController {
  /** Depth at most: beyond it a rejection cancels more than a round trip's worth of rounds anyway. */
  public static final int MAX_DEPTH = 8;
  private static final double DECAY = 0.9;
  /** Acceptance is capped below 1 so that the expected run before a rejection stays finite. */
  private static final double MAX_ACCEPTANCE = 0.98;
  /** Observed runs kept: a window of recent behaviour (the text being generated changes). */
  static final int RUNS = 64;
  /** Runs needed before they replace the geometric stand-in. */
  static final int MIN_RUNS = 8;
  /** A run this long is recorded and a new one begins, so a generation that never rejects still counts. */
  static final int MAX_RUN = 256;
  /** Expected gain a depth above 1 needs over the best synchronous choice. */
  static final double MARGIN = 0.10;

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
  private final int[] runs = new int[RUNS]; // ring: accepted drafts before each rejection
  private int runCount;
  private int openRun; // drafts standing since the last rejection

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
    openRun += Math.max(0, accepted);
    if (rejected || openRun >= MAX_RUN) {
      runs[runCount++ % RUNS] = Math.min(openRun, MAX_RUN);
      openRun = 0;
    }
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
    Choice sync = best(1, 1);
    Choice deep = depthMax > 1 ? best(2, depthMax) : sync;
    return rate(deep.k(), deep.depth()) > (1 + MARGIN) * rate(sync.k(), 1) ? deep : sync;
  }

  private Choice best(int dMin, int dMax) {
    Choice best = new Choice(kMin, dMin);
    double bestRate = -1;
    for (int d = dMin; d <= dMax; d++) {
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
    double c = compute.at(k, 1);
    double b = c * bottleneckShare;
    double drafting = draft.at(k, 0);
    double r = Double.isNaN(rtt) ? 0 : rtt;
    double t = drafting + r + c;
    double interval = Math.max(Math.max(b, drafting), t / d);
    double inFlight = Math.max(0, Math.min(d - 1, t / interval - 1));
    double lambda = (sharing - 1) / sharing;
    double work = drafting + phi * (c + Math.min(r, c));
    double tokens = 0;
    double time = 0;
    int n = Math.min(runCount, RUNS);
    if (n >= MIN_RUNS) {
      for (int i = 0; i < n; i++) {
        tokens += runs[i] + 1;
        time += cycle(runs[i] / k, t, interval, inFlight, b, lambda * c, work);
      }
    } else { // geometric stand-in: P(L) = (1 - a) a^L
      double a = acceptance();
      double p = 1 - a;
      for (int run = 0; run < MAX_RUN && p > 1e-9; run++, p *= a) {
        tokens += p * (run + 1);
        time += p * cycle(run / k, t, interval, inFlight, b, lambda * c, work);
      }
    }
    return tokens / time;
  }

  /** Time from a correction to the next one when j rounds stand whole before the rejecting one. */
  private static double cycle(int j, double t, double interval, double inFlight, double b, double othersLoss,
      double work) {
    double net = t + j * interval + (inFlight > 0 ? b : 0) + inFlight * othersLoss;
    double cpu = work * (j + 1 + inFlight);
    return Math.max(net, cpu);
  }

  @Override
  public synchronized String toString() {
    Choice c = next();
    int n = Math.min(runCount, RUNS);
    double mean = 0;
    for (int i = 0; i < n; i++) {
      mean += runs[i] / (double) n;
    }
    return String.format("{k=%d depth=%d a=%.3f runs=%d meanRun=%.1f rttMs=%.1f computeMs(k)=%.2f bottleneck=%.2f "
        + "draftMs(k)=%.2f rows=%.1f}", c.k(), c.depth(), acceptance(), n, mean, Double.isNaN(rtt) ? -1 : rtt / 1e6,
        compute.at(c.k(), 1) / 1e6, bottleneckShare, draft.at(c.k(), 0) / 1e6, sharing);
  }

}
