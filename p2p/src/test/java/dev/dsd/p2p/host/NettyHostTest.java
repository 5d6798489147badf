package dev.dsd.p2p.host;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.p2p.crypto.Identity;
import dev.dsd.p2p.identify.IdentifyProtocol;
import dev.dsd.p2p.multiaddr.Multiaddr;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** Two dsd hosts over real loopback TCP. */
class NettyHostTest {
  static NettyHost host() {
    NettyHost h = new NettyHost(Identity.generate(), HostConfig.loopback()).start();
    h.setStreamHandler(EchoProtocol.ID, EchoProtocol::serve);
    return h;
  }

  @Test
  void pingIdentifyAndEchoBothWays() throws Exception {
    try (NettyHost a = host(); NettyHost b = host()) {
      Multiaddr bAddr = b.listenAddrs().get(0).withPeer(b.peerId());
      Connection c = a.connect(bAddr).get(10, TimeUnit.SECONDS);
      assertEquals(b.peerId(), c.remotePeer());
      assertTrue(a.ping(b.peerId()).get(10, TimeUnit.SECONDS) > 0);
      IdentifyProtocol.Info info = a.identify(b.peerId()).get(10, TimeUnit.SECONDS);
      assertTrue(info.protocols().contains(EchoProtocol.ID), info.protocols().toString());
      assertEquals(b.listenAddrs(), info.listenAddrs());
      int size = 16 * 1024 * 1024;
      Stream ab = a.newStream(b.peerId(), List.of(EchoProtocol.ID), s -> { }).get(10, TimeUnit.SECONDS);
      // handlers are added after the stream is returned here: the echo starts only when we send
      assertTrue(EchoProtocol.roundTrip(ab, size, 1).get(60, TimeUnit.SECONDS), "a -> b -> a, 16 MiB");
      // b opens a stream back over the same connection (no dial: b has no address for a)
      Stream ba = b.newStream(a.peerId(), List.of(EchoProtocol.ID), s -> { }).get(10, TimeUnit.SECONDS);
      assertTrue(EchoProtocol.roundTrip(ba, size, 2).get(60, TimeUnit.SECONDS), "b -> a -> b, 16 MiB");
      assertEquals(1, a.connections().size());
      assertEquals(1, b.connections().size());
    }
  }

  @Test
  void identifyPushUpdatesTheRemotesView() throws Exception {
    try (NettyHost a = host(); NettyHost b = host()) {
      a.connect(b.listenAddrs().get(0).withPeer(b.peerId())).get(10, TimeUnit.SECONDS);
      java.util.concurrent.CompletableFuture<IdentifyProtocol.Info> pushed = new java.util.concurrent.CompletableFuture<>();
      b.onIdentify(i -> {
        if (i.protocols().contains("/dsd/new/1.0.0")) {
          pushed.complete(i);
        }
      });
      a.setStreamHandler("/dsd/new/1.0.0", s -> s.channel().close());
      a.pushIdentify(b.peerId()).get(10, TimeUnit.SECONDS);
      assertEquals(a.peerId(), pushed.get(10, TimeUnit.SECONDS).peer());
      assertTrue(b.peerStore().protocols(a.peerId()).contains("/dsd/new/1.0.0"));
    }
  }

  @Test
  void unknownProtocolsAndWrongPeersAreRefused() throws Exception {
    try (NettyHost a = host(); NettyHost b = host()) {
      Multiaddr bAddr = b.listenAddrs().get(0);
      a.connect(bAddr.withPeer(b.peerId())).get(10, TimeUnit.SECONDS);
      ExecutionException e = assertThrows(ExecutionException.class,
          () -> a.newStream(b.peerId(), List.of("/no/such/1.0.0"), s -> { }).get(10, TimeUnit.SECONDS));
      assertTrue(e.getCause().getMessage().contains("supports none"), e.getCause().getMessage());
      Identity stranger = Identity.generate();
      try (NettyHost c = host()) {
        ExecutionException wrong = assertThrows(ExecutionException.class,
            () -> c.connect(bAddr.withPeer(stranger.peerId())).get(10, TimeUnit.SECONDS));
        assertTrue(wrong.getCause().getMessage().contains("dialed"), wrong.getCause().getMessage());
      }
    }
  }
}
