package dev.dsd.testnet;

/**
 * What one emulated link does to the bytes crossing it, in each direction separately.
 *
 * @param latencyMillis one-way delay added to every byte
 * @param jitterMillis each chunk's delay varies uniformly in ±jitter (never below zero, never reordering)
 * @param bandwidthMbit rate limit in megabits per second, 0 for none
 */
public record LinkProfile(double latencyMillis, double jitterMillis, double bandwidthMbit) {

  /** Bytes held in one direction before the sender is paused (backpressure, not unbounded memory). */
  public static final int MAX_QUEUED_BYTES = 8 * 1024 * 1024;

  public LinkProfile {
    if (latencyMillis < 0 || jitterMillis < 0 || bandwidthMbit < 0) {
      throw new IllegalArgumentException(
          "link profile values must be >= 0: latency=" + latencyMillis + "ms jitter=" + jitterMillis
              + "ms bandwidth=" + bandwidthMbit + "Mbit/s");
    }
  }

  public static final LinkProfile NONE = new LinkProfile(0, 0, 0);

  /** Nanoseconds the link needs to put {@code bytes} on the wire at the configured rate. */
  long serializationNanos(int bytes) {
    return bandwidthMbit == 0 ? 0 : (long) (bytes * 8L * 1000.0 / bandwidthMbit);
  }
}
