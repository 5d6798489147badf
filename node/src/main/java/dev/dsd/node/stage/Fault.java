package dev.dsd.node.stage;

import java.util.SplittableRandom;

/**
 * Deliberate misbehaviour of a stage, for testing that the swarm notices a peer that lies
 * ({@code dsd node --fault corrupt}). Never on unless asked for.
 */
public enum Fault {
  NONE,
  /** Returns plausible-looking but wrong activations: each value scaled and noised. */
  CORRUPT,
  /** Computes right but slowly (40 ms more per round), like an overloaded or throttled machine. */
  SLOW;

  private static final SplittableRandom RANDOM = new SplittableRandom(0xBAD);

  void apply(float[] values) {
    if (this == SLOW) {
      try {
        Thread.sleep(40);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
    if (this == CORRUPT) {
      synchronized (RANDOM) {
        for (int i = 0; i < values.length; i++) {
          values[i] = (float) (values[i] * -0.5 + RANDOM.nextGaussian());
        }
      }
    }
  }
}
