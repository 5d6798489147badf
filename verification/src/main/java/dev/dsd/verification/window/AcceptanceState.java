package dev.dsd.verification.window;

import java.util.List;

/**
 * What a window controller knows of acceptance so far: an exponentially weighted count of
 * accepted drafts and of rejections (so the rate follows a changing text), and how the last round
 * went. The analytic controller reads only the rate; the learned one ({@link AcceptanceHazard})
 * reads {@link #features}, and its trainer replays traces through this same class, so training and
 * use compute the features with one piece of code.
 */
public final class AcceptanceState {
  /** Names of {@link #features}, in order; a model file must list exactly these. */
  public static final List<String> FEATURES = List.of("bias", "logit_a", "last_frac", "last_full", "log_j",
      "logit_a_log_j", "last_full_log_j");
  static final double DECAY = 0.9;
  /** The rate enters as a logit: clamped so a run of all-accepted rounds stays a finite feature. */
  private static final double RATE_CLAMP = 0.01;

  private double successes = 1;
  private double failures = 1;
  private int lastK;
  private int lastAccepted;

  public AcceptanceState() { }

  public AcceptanceState copy() {
    AcceptanceState s = new AcceptanceState();
    s.successes = successes;
    s.failures = failures;
    s.lastK = lastK;
    s.lastAccepted = lastAccepted;
    return s;
  }

  /** A round that proposed {@code k >= 1} drafts of which the target accepted {@code accepted}. */
  public void observe(int k, int accepted) {
    if (k < 1 || accepted < 0 || accepted > k) {
      throw new IllegalArgumentException("a round accepts 0..k of its k >= 1 drafts, got " + accepted + " of " + k);
    }
    successes = DECAY * successes + accepted;
    failures = DECAY * failures + (accepted < k ? 1 : 0);
    lastK = k;
    lastAccepted = accepted;
  }

  /** Estimated per-draft acceptance rate. */
  public double rate() {
    return successes / (successes + failures);
  }

  /** The hazard model's inputs for the j-th draft (j >= 1) of the next round; see {@link #FEATURES}. */
  public double[] features(int j) {
    double a = Math.min(1 - RATE_CLAMP, Math.max(RATE_CLAMP, rate()));
    double logitA = Math.log(a / (1 - a));
    double lastFrac = lastK == 0 ? 0.5 : (double) lastAccepted / lastK; // no round yet: no evidence either way
    double lastFull = lastK > 0 && lastAccepted == lastK ? 1 : 0;
    double logJ = Math.log(j);
    return new double[] {1, logitA, lastFrac, lastFull, logJ, logitA * logJ, lastFull * logJ};
  }
}
