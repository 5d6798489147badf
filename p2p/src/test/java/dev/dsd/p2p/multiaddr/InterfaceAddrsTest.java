package dev.dsd.p2p.multiaddr;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.p2p.crypto.Identity;
import dev.dsd.p2p.host.HostConfig;
import dev.dsd.p2p.host.NettyHost;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class InterfaceAddrsTest {
  @Test
  void scopes() {
    assertEquals(AddrScope.LOOPBACK, AddrScope.of(Multiaddr.parse("/ip4/127.0.0.1/tcp/1")));
    assertEquals(AddrScope.LOOPBACK, AddrScope.of(Multiaddr.parse("/ip6/::1/tcp/1")));
    assertEquals(AddrScope.PRIVATE, AddrScope.of(Multiaddr.parse("/ip4/192.168.1.5/tcp/1")));
    assertEquals(AddrScope.PRIVATE, AddrScope.of(Multiaddr.parse("/ip4/10.0.0.1/tcp/1")));
    assertEquals(AddrScope.PRIVATE, AddrScope.of(Multiaddr.parse("/ip4/172.20.0.1/tcp/1")));
    assertEquals(AddrScope.PRIVATE, AddrScope.of(Multiaddr.parse("/ip4/100.100.0.1/tcp/1")));
    assertEquals(AddrScope.PRIVATE, AddrScope.of(Multiaddr.parse("/ip6/fd00::1/tcp/1")));
    assertEquals(AddrScope.PUBLIC, AddrScope.of(Multiaddr.parse("/ip4/203.0.113.7/tcp/1")));
    assertEquals(AddrScope.PUBLIC, AddrScope.of(Multiaddr.parse("/ip4/100.128.0.1/tcp/1")));
    assertEquals(AddrScope.PUBLIC, AddrScope.of(Multiaddr.parse("/dns4/example.org/tcp/1")));
    assertTrue(AddrScope.PUBLIC.reachableFrom(AddrScope.PUBLIC));
    assertFalse(AddrScope.PRIVATE.reachableFrom(AddrScope.PUBLIC));
    assertTrue(AddrScope.PRIVATE.reachableFrom(AddrScope.LOOPBACK));
    assertFalse(AddrScope.LOOPBACK.reachableFrom(AddrScope.PRIVATE));
  }

  @Test
  void aWildcardListenAddressIsReportedAsTheInterfacesAddresses() throws Exception {
    HostConfig cfg = new HostConfig(List.of(Multiaddr.parse("/ip4/0.0.0.0/tcp/0")), List.of(), 16,
        Duration.ofSeconds(5), Duration.ofSeconds(5), "test");
    try (NettyHost wild = new NettyHost(Identity.generate(), cfg).start();
        NettyHost dialer = new NettyHost(Identity.generate(), HostConfig.loopback()).start()) {
      List<Multiaddr> addrs = wild.listenAddrs();
      assertFalse(addrs.isEmpty());
      assertTrue(addrs.contains(Multiaddr.parse("/ip4/127.0.0.1/tcp/" + port(addrs.get(0)))), addrs.toString());
      for (Multiaddr a : addrs) {
        assertTrue(a.toString().startsWith("/ip4/"), "ip4 only: " + a);
        assertFalse(a.toString().startsWith("/ip4/0.0.0.0"), "no wildcard: " + a);
        assertEquals(port(addrs.get(0)), port(a), "all on the one bound port");
      }
      // every address is dialable
      for (Multiaddr a : addrs) {
        dialer.connect(a.withPeer(wild.peerId())).get(10, TimeUnit.SECONDS).channel().close().sync();
      }
    }
  }

  static int port(Multiaddr a) {
    return a.toInetSocketAddress().getPort();
  }
}
