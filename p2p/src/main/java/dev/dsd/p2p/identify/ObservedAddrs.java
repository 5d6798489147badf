package dev.dsd.p2p.identify;

import dev.dsd.p2p.multiaddr.AddrScope;
import dev.dsd.p2p.multiaddr.Multiaddr;
import java.net.InetAddress;
import java.time.Duration;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Learns our public address from what peers report in identify's {@code observedAddr}. One peer's
 * word is not enough (it may lie, or sit behind the same NAT): an address is confirmed once
 * observers at {@link #MIN_OBSERVER_IPS} distinct IP addresses reported it within {@link #TTL}.
 * Only public-scope observations count, and the observed port is replaced by our listen port: a
 * NAT maps each outbound connection to its own port, so the observed port is of no use to a dialer,
 * while the IP with our listen port is what a forwarded or port-preserving router serves (AutoNAT
 * then checks it). Bounded: {@link #MAX_CANDIDATES} addresses, {@link #MAX_OBSERVERS} observers each.
 */
public final class ObservedAddrs {
  public static final int MIN_OBSERVER_IPS = 2;
  public static final Duration TTL = Duration.ofMinutes(30);
  public static final int MAX_CANDIDATES = 16;
  public static final int MAX_OBSERVERS = 16;

  // candidate address -> observer IP -> last seen (millis)
  private final Map<Multiaddr, Map<InetAddress, Long>> seen = new LinkedHashMap<>();

  /**
   * Records that the peer at {@code observer} saw us at {@code observed}; {@code listen} are our
   * listen addresses, whose ports the candidates take. Returns the confirmed addresses after it.
   */
  public synchronized Set<Multiaddr> record(InetAddress observer, Multiaddr observed, List<Multiaddr> listen,
      long nowMillis) {
    if (observed != null && AddrScope.of(observed) == AddrScope.PUBLIC) {
      try {
        observed.toInetSocketAddress();
      } catch (IllegalArgumentException e) {
        return confirmed(nowMillis); // not a TCP address
      }
      for (Multiaddr l : listen) {
        Multiaddr candidate = withPort(observed, l);
        if (candidate == null) {
          continue;
        }
        if (!seen.containsKey(candidate) && seen.size() >= MAX_CANDIDATES) {
          evictOldest();
        }
        Map<InetAddress, Long> by = seen.computeIfAbsent(candidate, k -> new HashMap<>());
        if (by.size() >= MAX_OBSERVERS && !by.containsKey(observer)) {
          by.entrySet().stream().min(Map.Entry.comparingByValue()).ifPresent(e -> by.remove(e.getKey()));
        }
        by.put(observer, nowMillis);
      }
    }
    return confirmed(nowMillis);
  }

  /** Addresses reported by enough distinct observer IPs within the TTL. */
  public synchronized Set<Multiaddr> confirmed(long nowMillis) {
    Set<Multiaddr> out = new LinkedHashSet<>();
    for (Iterator<Map.Entry<Multiaddr, Map<InetAddress, Long>>> it = seen.entrySet().iterator(); it.hasNext();) {
      Map.Entry<Multiaddr, Map<InetAddress, Long>> e = it.next();
      e.getValue().values().removeIf(t -> t + TTL.toMillis() < nowMillis);
      if (e.getValue().isEmpty()) {
        it.remove();
      } else if (e.getValue().size() >= MIN_OBSERVER_IPS) {
        out.add(e.getKey());
      }
    }
    return out;
  }

  private void evictOldest() {
    Multiaddr oldest = null;
    long at = Long.MAX_VALUE;
    for (Map.Entry<Multiaddr, Map<InetAddress, Long>> e : seen.entrySet()) {
      long last = e.getValue().values().stream().mapToLong(Long::longValue).max().orElse(0);
      if (last < at) {
        at = last;
        oldest = e.getKey();
      }
    }
    seen.remove(oldest);
  }

  /** The observed IP with the listen address's port, if both are the same IP family. */
  private static Multiaddr withPort(Multiaddr observed, Multiaddr listen) {
    Multiaddr.Component ip = observed.components().get(0);
    Multiaddr.Component lip = listen.components().get(0);
    if (ip.protocol() != lip.protocol()) {
      return null;
    }
    try {
      int port = listen.toInetSocketAddress().getPort();
      return Multiaddr.parse("/" + ip.protocol().name + "/" + ip.valueString() + "/tcp/" + port);
    } catch (IllegalArgumentException e) {
      return null;
    }
  }
}
