package dev.dsd.p2p.relay;

import java.time.Duration;

/**
 * What a relay grants (circuit-v2.md "Reservation" and "Limit"); every field names its unit.
 *
 * @param reservationTtl how long a reservation lasts before the client must renew it
 * @param maxReservations reservation slots, all peers together
 * @param maxCircuits relayed connections open at once, all peers together
 * @param maxCircuitsPerPeer relayed connections open at once from or to one peer
 * @param circuitDuration how long one relayed connection may last (0: unlimited)
 * @param circuitBytes bytes one relayed connection may carry in each direction (0: unlimited)
 */
public record RelayLimits(Duration reservationTtl, int maxReservations, int maxCircuits, int maxCircuitsPerPeer,
    Duration circuitDuration, long circuitBytes) {
  public static final Duration DEFAULT_RESERVATION_TTL = Duration.ofHours(1);
  public static final int DEFAULT_MAX_RESERVATIONS = 128;
  public static final int DEFAULT_MAX_CIRCUITS = 64;
  public static final int DEFAULT_MAX_CIRCUITS_PER_PEER = 8;
  /**
   * A relayed connection is a bridge until DCUtR finds a direct path (seconds), or the fallback when
   * none exists: long enough for a generation, short enough that a relay is not a data plane.
   */
  public static final Duration DEFAULT_CIRCUIT_DURATION = Duration.ofMinutes(10);
  /** 64 MiB each way: a few thousand decode steps of a small model's activations. */
  public static final long DEFAULT_CIRCUIT_BYTES = 64L << 20;

  public RelayLimits {
    if (reservationTtl.toSeconds() < 1 || maxReservations < 1 || maxCircuits < 1 || maxCircuitsPerPeer < 1
        || circuitDuration.isNegative() || circuitBytes < 0) {
      throw new IllegalArgumentException("relay limits must be positive: " + reservationTtl + ", " + maxReservations
          + " slots, " + maxCircuits + " circuits, " + maxCircuitsPerPeer + " per peer, " + circuitDuration + ", "
          + circuitBytes + " bytes");
    }
  }

  public static RelayLimits defaults() {
    return new RelayLimits(DEFAULT_RESERVATION_TTL, DEFAULT_MAX_RESERVATIONS, DEFAULT_MAX_CIRCUITS,
        DEFAULT_MAX_CIRCUITS_PER_PEER, DEFAULT_CIRCUIT_DURATION, DEFAULT_CIRCUIT_BYTES);
  }

  public RelayLimits withReservationTtl(Duration ttl) {
    return new RelayLimits(ttl, maxReservations, maxCircuits, maxCircuitsPerPeer, circuitDuration, circuitBytes);
  }

  public RelayLimits withMaxReservations(int slots) {
    return new RelayLimits(reservationTtl, slots, maxCircuits, maxCircuitsPerPeer, circuitDuration, circuitBytes);
  }

  public RelayLimits withCircuit(Duration duration, long bytes) {
    return new RelayLimits(reservationTtl, maxReservations, maxCircuits, maxCircuitsPerPeer, duration, bytes);
  }
}
