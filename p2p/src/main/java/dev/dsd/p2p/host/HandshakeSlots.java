package dev.dsd.p2p.host;

import java.net.InetAddress;
import java.util.HashMap;
import java.util.Map;

/**
 * Inbound connections still in their handshake (TCP accepted, Noise and muxer not yet agreed),
 * counted apart from established ones: at most {@code max} at once and {@code perIp} from one
 * address. A flood of half-open handshakes then fills only these slots, never the established
 * connections' limit that our own dials are checked against.
 */
final class HandshakeSlots {
  private final int max;
  private final int perIp;
  private final Map<InetAddress, Integer> byIp = new HashMap<>();
  private int pending;

  HandshakeSlots(int max, int perIp) {
    this.max = max;
    this.perIp = perIp;
  }

  /** Takes a slot for a handshake from {@code ip}; null when taken, else why not. */
  synchronized String tryAcquire(InetAddress ip) {
    if (pending >= max) {
      return pending + " handshakes pending, limit " + max;
    }
    int n = byIp.getOrDefault(ip, 0);
    if (n >= perIp) {
      return n + " handshakes pending from " + ip.getHostAddress() + ", limit " + perIp + " per IP";
    }
    byIp.put(ip, n + 1);
    pending++;
    return null;
  }

  synchronized void release(InetAddress ip) {
    Integer n = byIp.get(ip);
    if (n == null) {
      return;
    }
    pending--;
    if (n == 1) {
      byIp.remove(ip);
    } else {
      byIp.put(ip, n - 1);
    }
  }

  synchronized int pending() {
    return pending;
  }
}
