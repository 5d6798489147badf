package dev.dsd.p2p.host;

import dev.dsd.p2p.core.PeerId;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Hole punches in flight, by the remote address they dial (DCUtR's TCP simultaneous open).
 *
 * <p>Both sides dial from their listen ports, so the remote's SYN may reach our listener before our
 * own SYN has left. The kernel then hands that connection to accept(), and our connect fails with
 * EADDRNOTAVAIL because the 4-tuple is taken. The accepted connection is the hole punch's connection:
 * it must be upgraded with the security role DCUtR gave this side, not the listener's usual responder
 * role, or both ends wait for each other as Noise responders until the handshake times out (seen on
 * loopback, where the two SYNs race within microseconds). And it is what the dial returns.
 */
final class HolePunchDials {
  /** How long a failed connect waits for the accepted connection that explains its failure. */
  static final Duration ACCEPT_GRACE = Duration.ofSeconds(1);
  /**
   * How long a hole punch's TCP connect may take (the upgrade after it has the host's dial timeout).
   * A punch whose SYNs crossed in flight and were dropped by both NATs succeeds with the first SYN
   * retransmission, 1 s later on Linux; one that has not connected by then will not, and DCUtR's next
   * attempt (a fresh CONNECT/SYNC exchange) is a better use of the time than a 10 s dial timeout.
   */
  static final Duration CONNECT_TIMEOUT = Duration.ofMillis(2500);

  /** One hole-punch dial: the role to upgrade with and the dial's result. */
  static final class Pending {
    final PeerId peer;
    final boolean initiator;
    final CompletableFuture<Connection> result = new CompletableFuture<>();
    /** Set when an inbound connection took this dial's place; its upgrade then decides the result. */
    volatile boolean claimed;

    Pending(PeerId peer, boolean initiator) {
      this.peer = peer;
      this.initiator = initiator;
    }
  }

  private final Map<InetSocketAddress, Pending> pending = new ConcurrentHashMap<>();

  /** A hole punch to {@code remote} starts; a later one to the same address replaces it. */
  Pending start(InetSocketAddress remote, PeerId peer, boolean initiator) {
    Pending p = new Pending(peer, initiator);
    pending.put(key(remote), p);
    return p;
  }

  /** The hole punch to {@code remote} is over (connected, failed, or superseded). */
  void finish(InetSocketAddress remote, Pending p) {
    pending.remove(key(remote), p);
  }

  /**
   * An inbound connection from {@code remote}: the hole punch it belongs to, or null. Only the exact
   * address dialed matches: an unrelated connection from the same IP (another peer behind the same
   * NAT, or the punching peer's AutoNAT dial-back) must keep the plain responder role.
   */
  Pending claim(InetSocketAddress remote) {
    Pending p = pending.remove(key(remote));
    if (p != null) {
      p.claimed = true;
    }
    return p;
  }

  int size() {
    return pending.size();
  }

  /** IPv4-mapped IPv6 (a dual-stack listener's view) and plain IPv4 are one key. */
  static InetSocketAddress key(InetSocketAddress a) {
    if (a.getAddress() == null) {
      return a;
    }
    try {
      return new InetSocketAddress(InetAddress.getByAddress(a.getAddress().getAddress()), a.getPort());
    } catch (UnknownHostException e) {
      return a; // cannot happen for an address's own bytes
    }
  }
}
