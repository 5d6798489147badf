package dev.dsd.node.swarm;

import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.host.NettyHost;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Round-trip times this node measured to its peers with libp2p ping, smoothed (EWMA, like TCP's
 * SRTT) so one slow ping does not swing routing. Shared with other nodes through info replies, so
 * an entry also learns the links between stages.
 */
public final class RttTable {
  private static final double ALPHA = 0.3;
  private final NettyHost host;
  private final Map<PeerId, Double> micros = new ConcurrentHashMap<>();

  public RttTable(NettyHost host) {
    this.host = host;
  }

  /** Pings the peer and folds the result in; completes with the smoothed RTT in microseconds. */
  public CompletableFuture<Double> measure(PeerId peer) {
    return host.ping(peer).thenApply(nanos -> micros.merge(peer, nanos / 1000.0,
        (old, now) -> old * (1 - ALPHA) + now * ALPHA));
  }

  /** Smoothed RTT in microseconds, or NaN when never measured. */
  public double get(PeerId peer) {
    return micros.getOrDefault(peer, Double.NaN);
  }

  public Map<PeerId, Double> snapshot() {
    return Map.copyOf(micros);
  }

  public void forget(PeerId peer) {
    micros.remove(peer);
  }
}
