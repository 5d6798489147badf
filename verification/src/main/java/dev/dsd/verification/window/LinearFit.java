package dev.dsd.verification.window;

/** Exponentially weighted least squares for t = c0 + c1 k (window controllers' cost fits). */
final class LinearFit {
  private final double decay;
  private double sw;
  private double sk;
  private double skk;
  private double st;
  private double skt;

  LinearFit(double decay) {
    this.decay = decay;
  }

  LinearFit copy() {
    LinearFit f = new LinearFit(decay);
    f.sw = sw;
    f.sk = sk;
    f.skk = skk;
    f.st = st;
    f.skt = skt;
    return f;
  }

  void add(int k, double t) {
    sw = decay * sw + 1;
    sk = decay * sk + k;
    skk = decay * skk + (double) k * k;
    st = decay * st + t;
    skt = decay * skt + k * t;
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
      c1 = skk > 0 ? skt / skk : 0;
    }
    return Math.max(c0 + c1 * k, floor);
  }
}
