package dev.dsd.verification.window;

/** Chooses how many draft tokens the next round proposes, and learns from how rounds went. */
public interface WindowPolicy {
  int next();

  /**
   * One finished round.
   *
   * @param k drafts proposed
   * @param accepted drafts the target accepted
   * @param draftNanos time spent drafting the k tokens
   * @param verifyNanos time of the target's pass, network included for a pipeline
   * @param rttNanos the round's pure network round trip (0 when local), if the caller knows it
   */
  void observe(int k, int accepted, long draftNanos, long verifyNanos, long rttNanos);

  static WindowPolicy fixed(int k) {
    return new WindowPolicy() {
      @Override
      public int next() {
        return k;
      }

      @Override
      public void observe(int k2, int accepted, long d, long v, long r) { }
    };
  }
}
