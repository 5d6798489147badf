package dev.dsd.p2p.autonat;

import dev.dsd.p2p.core.PeerId;
import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;

/**
 * How many dial-backs an AutoNAT server runs: at most {@code perPeer} for one peer and
 * {@code global} for all peers within any {@code windowMillis}, and {@code inFlight} at once. A
 * dial-back costs the server a TCP connection and a Noise handshake, so a requester must not be
 * able to turn it into a dialing machine.
 */
final class AutoNatRateLimit {
  private final int perPeer;
  private final int global;
  private final int maxInFlight;
  private final long windowMillis;
  private final Map<PeerId, ArrayDeque<Long>> byPeer = new HashMap<>();
  private final ArrayDeque<Long> all = new ArrayDeque<>();
  private int inFlight;

  AutoNatRateLimit(int perPeer, int global, int maxInFlight, long windowMillis) {
    this.perPeer = perPeer;
    this.global = global;
    this.maxInFlight = maxInFlight;
    this.windowMillis = windowMillis;
  }

  /** Takes a dial-back for {@code peer} at {@code now}; null when taken, else why not. */
  synchronized String tryAcquire(PeerId peer, long now) {
    expire(all, now);
    byPeer.values().forEach(q -> expire(q, now));
    byPeer.values().removeIf(ArrayDeque::isEmpty);
    if (inFlight >= maxInFlight) {
      return inFlight + " dial-backs running, limit " + maxInFlight;
    }
    if (all.size() >= global) {
      return all.size() + " dial-backs in the last " + windowMillis + " ms, limit " + global;
    }
    ArrayDeque<Long> q = byPeer.computeIfAbsent(peer, p -> new ArrayDeque<>());
    if (q.size() >= perPeer) {
      return q.size() + " dial-backs for this peer in the last " + windowMillis + " ms, limit " + perPeer;
    }
    q.add(now);
    all.add(now);
    inFlight++;
    return null;
  }

  synchronized void release() {
    inFlight--;
  }

  private void expire(ArrayDeque<Long> q, long now) {
    while (!q.isEmpty() && q.peekFirst() + windowMillis <= now) {
      q.pollFirst();
    }
  }
}
