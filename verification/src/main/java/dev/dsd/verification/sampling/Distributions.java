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
    Integer[] order = new Integer[p.length];
    for (int i = 0; i < p.length; i++) {
      order[i] = i;
    }
    Arrays.sort(order, (a, b) -> p[a] != p[b] ? Double.compare(p[b], p[a]) : Integer.compare(a, b));
    double[] out = new double[p.length];
    double mass = 0;
    for (int idx : order) {
      out[idx] = p[idx];
      mass += p[idx];
      if (mass >= topP) {
        break;
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
