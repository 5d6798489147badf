package dev.dsd.node.stage;

import dev.dsd.p2p.core.PeerId;
import java.util.HashMap;
import java.util.Map;

/**
 * What one remote peer may hold of this stage: sessions, KV-cache bytes, and a byte rate of
 * activations sent to us. One greedy peer must not take the whole node (llama.cpp's RPC server
 * trusted every client; a swarm cannot).
 */
final class PeerQuota {
  /** The per-peer limits; a rate of 0 means unlimited. */
  record Limits(int sessions, long kvBytes, long bytesPerSecond) {
    static Limits of(int maxSessions, long kvBudget) {
      // a busy entry legitimately runs many sessions, but never more than half the node
      return new Limits(Math.max(1, maxSessions / 2), kvBudget / 2, 256L << 20);
    }
  }

  private static final class Usage {
    int sessions;
    long kvBytes;
    double tokens; // token bucket of bytes
    long refilledAt = System.nanoTime();
  }

  private final Limits limits;
  private final Map<PeerId, Usage> usage = new HashMap<>();

  PeerQuota(Limits limits) {
    this.limits = limits;
  }

  /** Reserves a session of {@code kvBytes} (0: charged as it grows); returns why not, or null when granted. */
  synchronized String acquire(PeerId peer, long kvBytes) {
    Usage u = usage.computeIfAbsent(peer, p -> new Usage());
    if (u.sessions + 1 > limits.sessions()) {
      return "peer " + peer + " already holds " + u.sessions + " sessions here, limit " + limits.sessions();
    }
    if (u.kvBytes + kvBytes > limits.kvBytes()) {
      return "peer " + peer + " would hold " + (u.kvBytes + kvBytes) + " bytes of KV cache here, limit "
          + limits.kvBytes();
    }
    u.sessions++;
    u.kvBytes += kvBytes;
    return null;
  }

  /**
   * Charges {@code more} KV bytes to a session the peer already holds, as the session grows to
   * {@code positions}; returns why not (what it asked, what the peer holds, the limit), or null.
   */
  synchronized String growKv(PeerId peer, long more, String session, int positions) {
    Usage u = usage.get(peer);
    long held = u == null ? 0 : u.kvBytes;
    if (u == null || held + more > limits.kvBytes()) {
      return "peer " + peer + " holds " + held + " bytes of KV cache here, limit " + limits.kvBytes()
          + "; session " + session + " needs " + more + " more to grow to " + positions + " positions";
    }
    u.kvBytes += more;
    return null;
  }

  synchronized void release(PeerId peer, long kvBytes) {
    Usage u = usage.get(peer);
    if (u != null) {
      u.sessions--;
      u.kvBytes -= kvBytes;
      if (u.sessions <= 0) {
        usage.remove(peer);
      }
    }
  }

  /** Charges {@code bytes} received from the peer; returns why it is over its rate, or null. */
  synchronized String charge(PeerId peer, long bytes) {
    if (limits.bytesPerSecond() <= 0) {
      return null;
    }
    Usage u = usage.computeIfAbsent(peer, p -> new Usage());
    long now = System.nanoTime();
    // the bucket holds one second's worth: bursts of a long prompt are fine, a sustained flood is not
    u.tokens = Math.min(limits.bytesPerSecond(), u.tokens + (now - u.refilledAt) / 1e9 * limits.bytesPerSecond());
    u.refilledAt = now;
    if (bytes > u.tokens && bytes <= limits.bytesPerSecond()) {
      return "peer " + peer + " sends more than " + limits.bytesPerSecond() + " bytes/s";
    }
    u.tokens -= Math.min(bytes, u.tokens);
    return null;
  }
}
