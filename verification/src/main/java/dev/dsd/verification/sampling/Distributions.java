package dev.dsd.verification.sampling;

import java.util.Arrays;

/** Numerically careful helpers over token distributions. */
public final class Distributions {
  private Distributions() {}

  public static int argmax(float[] logits, int offset, int vocab) {
    int best = 0;
    float max = Float.NEGATIVE_INFINITY;
    for (int i = 0; i < vocab; i++) {
      float v = logits[offset + i];
      if (v > max) {
        max = v;
        best = i;
      }
    }
    return best;
  }

  /** softmax(logits / temperature), subtracting the maximum first so exp never overflows. */
  public static double[] softmax(float[] logits, int offset, int vocab, double temperature) {
    double max = Double.NEGATIVE_INFINITY;
    for (int i = 0; i < vocab; i++) {
      max = Math.max(max, logits[offset + i]);
    }
    double[] p = new double[vocab];
    double sum = 0;
    for (int i = 0; i < vocab; i++) {
      p[i] = Math.exp((logits[offset + i] - max) / temperature);
      sum += p[i];
    }
    for (int i = 0; i < vocab; i++) {
      p[i] /= sum;
    }
    return p;
  }

  /**
   * Keeps the smallest set of most likely tokens whose mass reaches {@code topP} and renormalises.
   * Ties at the boundary keep the lower id, so the result does not depend on sort stability.
   */
  public static double[] topP(double[] p, double topP) {
    if (topP >= 1) {
      return p;
    }
    // The cut in the order (probability descending, id ascending), without sorting boxed ids: sort
    // the values, find the value v at which the running mass reaches topP (the same additions in the
    // same order as walking the sorted tokens), keep every token above v and, of those equal to v,
    // the lowest ids until the count matches. A pipeline's last stage cuts every row of a tree round.
    double[] sorted = p.clone();
    Arrays.sort(sorted);
    double mass = 0;
    int k = sorted.length - 1;
    for (; k >= 0; k--) {
      mass += sorted[k];
      if (mass >= topP) {
        break;
      }
    }
    int kept = sorted.length - Math.max(k, 0);
    double cut = sorted[Math.max(k, 0)];
    int above = 0;
    for (double v : p) {
      above += v > cut ? 1 : 0;
    }
    int ties = kept - above;
    double[] out = new double[p.length];
    for (int i = 0; i < p.length; i++) {
      if (p[i] > cut) {
        out[i] = p[i];
      } else if (p[i] == cut && ties > 0) {
        out[i] = p[i];
        ties--;
      }
    }
    for (int i = 0; i < out.length; i++) {
      out[i] /= mass;
    }
    return out;
  }

  /** Inverse-CDF draw with a uniform {@code u} in [0, 1); never returns a zero-probability token. */
  public static int draw(double[] p, double u) {
    double c = 0;
    int last = -1;
    for (int i = 0; i < p.length; i++) {
      if (p[i] > 0) {
        c += p[i];
        last = i;
        if (u < c) {
          return i;
        }
      }
    }
    return last; // rounding left u just above the total mass
  }
}
