package dev.dsd.p2p.host;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.p2p.crypto.Identity;
import dev.dsd.p2p.identify.IdentifyProtocol;
import dev.dsd.p2p.multiaddr.AddrScope;
import dev.dsd.p2p.multiaddr.Multiaddr;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class HostAddrsTest {
  static final Multiaddr LOOP = Multiaddr.parse("/ip4/127.0.0.1/tcp/4001");
  static final Multiaddr LAN = Multiaddr.parse("/ip4/192.168.1.5/tcp/4001");
  static final Multiaddr WAN = Multiaddr.parse("/ip4/198.51.100.1/tcp/4001");

  @Test
  void eachPeerIsToldOnlyWhatItCanReach() {
    HostAddrs h = new HostAddrs(List.of());
    h.addListen(LOOP);
    h.addListen(LAN);
    h.setObserved(Set.of(WAN));
    assertEquals(List.of(LOOP, LAN, WAN), h.advertisedTo(AddrScope.LOOPBACK));
    assertEquals(List.of(LAN, WAN), h.advertisedTo(AddrScope.PRIVATE));
    assertEquals(List.of(WAN), h.advertisedTo(AddrScope.PUBLIC), "no private address to the internet");
    h.setUndialable(Set.of(WAN));
    assertEquals(List.of(), h.advertisedTo(AddrScope.PUBLIC), "nor one AutoNAT found undialable");
    assertEquals(List.of(LOOP, LAN, WAN), h.candidates(), "though AutoNAT keeps checking it");
  }

  @Test
  void announceAddressesReplaceTheRest() {
    HostAddrs h = new HostAddrs(List.of(WAN));
    h.addListen(LOOP);
    h.setObserved(Set.of(Multiaddr.parse("/ip4/198.51.100.9/tcp/1")));
    assertEquals(List.of(WAN), h.advertised());
  }

  @Test
  void anAddressChangeIsPushedToConnectedPeers() throws Exception {
    try (NettyHost a = new NettyHost(Identity.generate(), HostConfig.loopback()).start();
        NettyHost b = new NettyHost(Identity.generate(), HostConfig.loopback()).start()) {
      a.connect(b.listenAddrs().get(0).withPeer(b.peerId())).get(10, TimeUnit.SECONDS);
      a.identify(b.peerId()).get(10, TimeUnit.SECONDS); // a knows b takes pushes
      CompletableFuture<IdentifyProtocol.Info> pushed = new CompletableFuture<>();
      b.onIdentify(i -> {
        if (i.listenAddrs().contains(WAN)) {
          pushed.complete(i);
        }
      });
      a.addrs().setObserved(Set.of(WAN));
      assertEquals(a.peerId(), pushed.get(10, TimeUnit.SECONDS).peer());
      assertTrue(b.peerStore().addrs(a.peerId()).contains(WAN));
    }
  }
}
