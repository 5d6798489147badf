package dev.dsd.p2p.multiaddr;

import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.UnknownHostException;

/**
 * How far an IP address reaches: a loopback address only this machine, a private one (RFC 1918,
 * carrier-grade NAT 100.64/10, link-local, IPv6 unique-local) only its own network, a public one
 * anyone. Decides which of our addresses a peer is told: only those in scopes it can reach.
 */
public enum AddrScope {
  LOOPBACK, PRIVATE, PUBLIC;

  /** The scope of an IP address. */
  public static AddrScope of(InetAddress ip) {
    if (ip.isLoopbackAddress()) {
      return LOOPBACK;
    }
    if (ip.isAnyLocalAddress() || ip.isSiteLocalAddress() || ip.isLinkLocalAddress()) {
      return PRIVATE;
    }
    byte[] b = ip.getAddress();
    if (ip instanceof Inet4Address) {
      int a0 = b[0] & 0xff;
      int a1 = b[1] & 0xff;
      // 100.64.0.0/10: carrier-grade NAT, private to the provider's network
      if (a0 == 100 && a1 >= 64 && a1 < 128) {
        return PRIVATE;
      }
    } else if (ip instanceof Inet6Address && (b[0] & 0xfe) == 0xfc) {
      return PRIVATE; // fc00::/7, unique local
    }
    return PUBLIC;
  }

  /**
   * The scope of a TCP multiaddr's IP; DNS names count as public (whoever published them meant
   * them to be dialed), anything unparsable as loopback, the narrowest.
   */
  public static AddrScope of(Multiaddr a) {
    for (Multiaddr.Component c : a.components()) {
      switch (c.protocol()) {
        case IP4, IP6 -> {
          try {
            return of(InetAddress.getByAddress(c.value()));
          } catch (UnknownHostException e) {
            return LOOPBACK;
          }
        }
        case DNS, DNS4, DNS6 -> {
          return PUBLIC;
        }
        default -> { }
      }
    }
    return LOOPBACK;
  }

  /** Whether a peer whose address has scope {@code viewer} could reach an address of this scope. */
  public boolean reachableFrom(AddrScope viewer) {
    return ordinal() >= viewer.ordinal();
  }
}
