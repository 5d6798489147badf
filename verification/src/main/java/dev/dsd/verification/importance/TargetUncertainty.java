package dev.dsd.verification.importance;

/**
 * How unsure the target is at one position, read from its own distribution there. Adaptive
 * verification only relaxes where the target itself barely prefers its argmax: a token class alone
 * ({@link TokenImportance}) cannot tell a newline that ends a statement from one that would cut it.
 *
 * <ul>
 *   <li>{@link #margin}: top-1 minus top-2 probability; 0 when two tokens tie, 1 when one has all mass;</li>
 *   <li>{@link #gap}: how far a given token trails the argmax; for the second-ranked token it is the margin,
 *       and it is never below the margin for any token but the argmax, so a small gap implies an unsure target;</li>
 *   <li>{@link #entropy}: in nats, 0 for one-hot, ln(V) for uniform over V tokens.</li>
 * </ul>
 *
 * The gap is what the acceptance rule reads, because it needs only two probabilities per position,
 * which the last pipeline stage sends anyway; the entropy needs the whole row.
 */
public final class TargetUncertainty {
  private TargetUncertainty() {}

  /** Top-1 minus top-2 probability of {@code p} (a distribution); 1 for a single-token vocabulary. */
  public static double margin(double[] p) {
    double first = Double.NEGATIVE_INFINITY;
    double second = Double.NEGATIVE_INFINITY;
    for (double v : p) {
      if (v > first) {
        second = first;
        first = v;
      } else if (v > second) {
        second = v;
      }
    }
    return p.length < 2 ? 1.0 : first - second;
  }

  /**
   * {@code pArgmax - pToken}: how much less likely the token is than the target's choice; 0 for the
   * argmax itself (and where rounding of a summary put the token a hair above it).
   */
  public static double gap(double pArgmax, double pToken) {
    return Math.max(0, pArgmax - pToken);
  }

  /** Shannon entropy of {@code p} in nats (terms with p = 0 count 0). */
  public static double entropy(double[] p) {
    double h = 0;
    for (double v : p) {
      if (v > 0) {
        h -= v * Math.log(v);
      }
    }
    return h;
  }
}
