package dev.dsd.p2p.multiaddr;

import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.NetworkInterface;
import java.net.SocketException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * Turns a wildcard listen address ({@code /ip4/0.0.0.0/tcp/P}, {@code /ip6/::/tcp/P}) into the
 * addresses a peer can dial: one per address of each interface that is up, in the wildcard's
 * family. The socket itself reports {@code ::} (Java binds IPv4's wildcard dual-stack), which no
 * one can use. IPv6 link-local addresses are left out: they need a zone that a multiaddr cannot carry.
 */
public final class InterfaceAddrs {
  private InterfaceAddrs() {}

  public static boolean isWildcard(Multiaddr a) {
    InetSocketAddress s = a.toInetSocketAddress();
    return s.getHostString().equals("0.0.0.0") || s.getHostString().equals("::")
        || s.getHostString().equals("0:0:0:0:0:0:0:0");
  }

  /** {@code listen} itself unless it is a wildcard; then the concrete addresses on {@code port}. */
  public static List<Multiaddr> expand(Multiaddr listen, int port) {
    InetSocketAddress s = listen.toInetSocketAddress();
    if (!isWildcard(listen)) {
      return List.of(Multiaddr.tcp(new InetSocketAddress(resolve(s.getHostString()), port)));
    }
    boolean v4 = s.getHostString().equals("0.0.0.0");
    List<Multiaddr> out = new ArrayList<>();
    for (InetAddress ip : interfaceAddresses()) {
      if (v4 ? ip instanceof Inet4Address : ip instanceof Inet6Address && !ip.isLinkLocalAddress()) {
        out.add(Multiaddr.tcp(new InetSocketAddress(ip, port)));
      }
    }
    return out;
  }

  private static InetAddress resolve(String host) {
    try {
      return InetAddress.getByName(host);
    } catch (java.net.UnknownHostException e) {
      throw new IllegalArgumentException("cannot resolve listen host " + host, e);
    }
  }

  private static List<InetAddress> interfaceAddresses() {
    List<InetAddress> out = new ArrayList<>();
    try {
      for (NetworkInterface nif : Collections.list(NetworkInterface.getNetworkInterfaces())) {
        if (nif.isUp()) {
          out.addAll(Collections.list(nif.getInetAddresses()));
        }
      }
    } catch (SocketException e) {
      throw new IllegalStateException("cannot list network interfaces: " + e.getMessage(), e);
    }
    // loopback first, then the rest in the order the system lists them: stable output
    out.sort((a, b) -> Boolean.compare(!a.isLoopbackAddress(), !b.isLoopbackAddress()));
    return out;
  }
}
