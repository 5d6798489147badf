package dev.dsd.p2p.pnet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.crypto.Identity;
import dev.dsd.p2p.host.HostConfig;
import dev.dsd.p2p.host.NettyHost;
import dev.dsd.p2p.multiaddr.Multiaddr;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** allowPeers: only listed peers, checked after Noise, in both directions. */
class PnetAllowlistTest {
  static Multiaddr addr(NettyHost h) {
    return h.listenAddrs().get(0).withPeer(h.peerId());
  }

  static NettyHost host(Identity id, Set<PeerId> allow) {
    return new NettyHost(id, HostConfig.loopback().withAllowPeers(allow)).start();
  }

  static Throwable cause(java.util.concurrent.CompletableFuture<?> f) {
    return assertThrows(ExecutionException.class, () -> f.get(10, TimeUnit.SECONDS)).getCause();
  }

  static void eventually(String what, java.util.function.BooleanSupplier ok) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    while (!ok.getAsBoolean() && System.nanoTime() < deadline) {
      Thread.sleep(20);
    }
    assertTrue(ok.getAsBoolean(), what);
  }

  @Test
  void listedPeersConnectBothWays() throws Exception {
    Identity ia = Identity.generate();
    Identity ib = Identity.generate();
    try (NettyHost a = host(ia, Set.of(ib.peerId())); NettyHost b = host(ib, Set.of(ia.peerId()))) {
      a.connect(addr(b)).get(10, TimeUnit.SECONDS);
      assertTrue(a.ping(b.peerId()).get(10, TimeUnit.SECONDS) > 0);
      a.connections().get(0).channel().close().sync();
      eventually("b saw the close", () -> !b.isConnected(a.peerId()));
      b.connect(addr(a)).get(10, TimeUnit.SECONDS);
      assertTrue(b.ping(a.peerId()).get(10, TimeUnit.SECONDS) > 0);
    }
  }

  @Test
  void unlistedPeerDialingInIsDropped() throws Exception {
    Identity listed = Identity.generate();
    try (NettyHost a = host(Identity.generate(), Set.of(listed.peerId()));
        NettyHost stranger = new NettyHost(Identity.generate(), HostConfig.loopback()).start()) {
      // Noise completes on the dialer's side before a has seen who it is, so the dialer learns
      // only that the connection closed.
      cause(stranger.connect(addr(a)));
      eventually("a kept no connection to the stranger",
          () -> a.openChannels() == 0 && !a.isConnected(stranger.peerId()) && !stranger.isConnected(a.peerId()));
    }
  }

  @Test
  void unlistedPeerIsNotDialed() throws Exception {
    Identity listed = Identity.generate();
    try (NettyHost a = host(Identity.generate(), Set.of(listed.peerId()));
        NettyHost stranger = new NettyHost(Identity.generate(), HostConfig.loopback()).start()) {
      Throwable e = cause(a.connect(addr(stranger)));
      assertInstanceOf(PeerNotAllowedException.class, e, e.toString());
      assertEquals("peer " + stranger.peerId() + " is not in allowPeers (1 peers allowed)", e.getMessage());
      assertEquals(0, stranger.openChannels(), "refused before any TCP connect");
      assertInstanceOf(PeerNotAllowedException.class, cause(a.ping(stranger.peerId())));

      // without /p2p/ the dialer learns who answered only from Noise, and hangs up then
      Throwable late = cause(a.connect(addr(stranger).withoutPeer()));
      assertInstanceOf(PeerNotAllowedException.class, late, late.toString());
      eventually("no connection left on either side", () -> a.openChannels() == 0 && stranger.openChannels() == 0);
      assertEquals(List.of(), a.connections());
    }
  }

  @Test
  void emptyAllowlistIsAConfigError() {
    String m = assertThrows(IllegalArgumentException.class, () -> HostConfig.loopback().withAllowPeers(Set.of())).getMessage();
    assertTrue(m.contains("allowPeers is empty"), m);
    assertFalse(HostConfig.loopback().withAllowPeers(Set.of(Identity.generate().peerId())).allows(Identity.generate().peerId()));
    assertTrue(HostConfig.loopback().allows(Identity.generate().peerId()), "no allowlist: any peer");
  }
}
